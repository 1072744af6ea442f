using TscSim.Core.Engine;
using TscSim.Core.Hardware;
using TscSim.Core.Time;

namespace TscSim.Tests.Hardware;

public class HostTests
{
    private static readonly Frequency TwoGHz = Frequency.FromMegahertz(2_000);

    private static SimTime Ms(long ms) => SimTime.FromDuration(Duration.FromMilliseconds(ms));

    private static (Simulator Sim, Host Host) Build(CpuModel cpu, Func<HostConfig, HostConfig>? tweak = null, ulong seed = 1)
    {
        var sim = new Simulator(seed);
        var config = new HostConfig { Id = "h", Cpu = cpu, Frequency = TwoGHz };
        var host = new Host(tweak is null ? config : tweak(config), sim);
        return (sim, host);
    }

    [Fact]
    public void A_2GHz_core_with_plus_50ppm_reads_2000100000_ticks_after_one_second()
    {
        var (sim, host) = Build(CpuPresets.IntelNehalem, c => c with { Drift = Ppm.FromPartsPerMillion(50) });
        sim.Run(SimTime.FromDuration(Duration.FromSeconds(1)));
        Assert.Equal(2_000_100_000UL, host.Cores[0].ReadTsc(sim.Now).Raw);
        Assert.Equal(Frequency.FromHertz(2_000_100_000), host.Cores[0].TscRate);
    }

    [Fact]
    public void A_non_constant_TSC_halves_its_rate_with_the_core_and_a_constant_one_does_not()
    {
        // 1 ms at 2 GHz = 2,000,000 ticks, then 1 ms at 1 GHz = 1,000,000 more.
        var (sim, k8) = Build(CpuPresets.AmdK8);
        k8.ScheduleFrequencyChange(Ms(1), 0, Frequency.FromMegahertz(1_000));
        sim.Run(Ms(2));
        Assert.Equal(3_000_000UL, k8.Cores[0].ReadTsc(sim.Now).Raw);
        Assert.Equal(4_000_000UL, k8.Cores[1].ReadTsc(sim.Now).Raw); // the sibling kept 2 GHz
        Assert.Equal(Frequency.FromMegahertz(1_000), k8.Cores[0].TscRate);

        var (sim2, nehalem) = Build(CpuPresets.IntelNehalem);
        nehalem.ScheduleFrequencyChange(Ms(1), 0, Frequency.FromMegahertz(1_000));
        sim2.Run(Ms(2));
        Assert.Equal(4_000_000UL, nehalem.Cores[0].ReadTsc(sim2.Now).Raw);
        Assert.Equal(Frequency.FromMegahertz(1_000), nehalem.Cores[0].Frequency); // the core did slow down
        Assert.Equal(TwoGHz, nehalem.Cores[0].TscRate);
    }

    [Fact]
    public void A_package_frequency_change_moves_every_core_of_the_socket_only()
    {
        var (sim, host) = Build(CpuPresets.AmdK8, c => c with { Sockets = 2 });
        host.SchedulePackageFrequencyChange(Ms(1), 1, Frequency.FromMegahertz(500));
        sim.Run(Ms(2));
        Assert.Equal([4_000_000UL, 4_000_000, 2_500_000, 2_500_000], host.Cores.Select(c => c.ReadTsc(sim.Now).Raw));
    }

    [Fact]
    public void A_core_that_is_not_nonstop_falls_behind_by_exactly_its_deep_sleep()
    {
        // Core 0 sleeps in C3 from 1 ms to 4 ms: at 10 ms it has counted 7 ms, its sibling 10 ms.
        var (sim, core2) = Build(CpuPresets.IntelCore2);
        core2.ScheduleCState(Ms(1), 0, CState.C3, Duration.FromMilliseconds(3));
        sim.Run(Ms(10));
        Assert.Equal(14_000_000UL, core2.Cores[0].ReadTsc(sim.Now).Raw);
        Assert.Equal(20_000_000UL, core2.Cores[1].ReadTsc(sim.Now).Raw);
        Assert.Equal(6_000_000L, core2.Cores[1].ReadTsc(sim.Now) - core2.Cores[0].ReadTsc(sim.Now));
        Assert.Equal(CState.C0, core2.Cores[0].CState);
    }

    [Fact]
    public void A_nonstop_TSC_keeps_counting_in_deep_sleep_and_a_shallow_halt_stops_nobody()
    {
        var (sim, nehalem) = Build(CpuPresets.IntelNehalem);
        nehalem.ScheduleCState(Ms(1), 0, CState.C6, Duration.FromMilliseconds(3));
        sim.Run(Ms(10));
        Assert.Equal(nehalem.Cores[1].ReadTsc(sim.Now), nehalem.Cores[0].ReadTsc(sim.Now));

        var (sim2, core2) = Build(CpuPresets.IntelCore2);
        core2.ScheduleCState(Ms(1), 0, CState.C1, Duration.FromMilliseconds(3));
        sim2.Run(Ms(10));
        Assert.Equal(core2.Cores[1].ReadTsc(sim2.Now), core2.Cores[0].ReadTsc(sim2.Now));

        // K8 stops already in C1E.
        var (sim3, k8) = Build(CpuPresets.AmdK8);
        k8.ScheduleCState(Ms(1), 0, CState.C1E, Duration.FromMilliseconds(3));
        sim3.Run(Ms(10));
        Assert.Equal(6_000_000L, k8.Cores[1].ReadTsc(sim3.Now) - k8.Cores[0].ReadTsc(sim3.Now));
    }

    [Fact]
    public void Socket_skew_separates_sockets_and_not_cores_of_one_socket()
    {
        var (sim, host) = Build(CpuPresets.IntelNehalem, c => c with { Sockets = 3, SocketSkew = new Cycles(1_000) });
        sim.Run(Ms(1));
        var tsc = host.Cores.Select(c => c.ReadTsc(sim.Now).Raw).ToArray();
        Assert.Equal([2_000_000UL, 2_000_000, 2_001_000, 2_001_000, 2_002_000, 2_002_000], tsc);
    }

    [Fact]
    public void Each_socket_crystal_drifts_on_its_own()
    {
        // Socket 1 at +10 ppm gains 20,000 ticks per second of 2 GHz over socket 0.
        var (sim, host) = Build(CpuPresets.IntelNehalem, c => c with
        {
            Sockets = 2,
            SocketDrift = [Ppm.Zero, Ppm.FromPartsPerMillion(10)],
            SocketSkew = new Cycles(-500),
            Uptime = Duration.FromMilliseconds(1),
        });
        Assert.Equal(2_000_000UL, host.Cores[0].ReadTsc(sim.Now).Raw);        // 1 ms of uptime
        Assert.Equal(1_999_520UL, host.Cores[2].ReadTsc(sim.Now).Raw);        // 1 ms at +10 ppm (2,000,020) − 500
        sim.Run(SimTime.FromDuration(Duration.FromSeconds(1)));
        Assert.Equal(2_002_000_000UL, host.Cores[0].ReadTsc(sim.Now).Raw);
        Assert.Equal(2_002_019_520UL, host.Cores[2].ReadTsc(sim.Now).Raw);
    }

    [Fact]
    public void Uptime_starts_every_counter_where_boot_left_it()
    {
        var (sim, host) = Build(CpuPresets.IntelSkylake, c => c with { Uptime = Duration.FromSeconds(10) });
        Assert.Equal(20_000_000_000UL, host.Cores[0].ReadTsc(sim.Now).Raw);
        Assert.Equal(10_000_000_000L, host.Monotonic.NanosecondsAt(sim.Now));
        Assert.Equal(143_181_800UL, host.Hpet.ReadMainCounter(sim.Now));
    }

    [Fact]
    public void A_frequency_change_applies_before_a_read_at_the_same_picosecond()
    {
        var (sim, host) = Build(CpuPresets.AmdK8);
        Frequency seen = default;
        var read = sim.RegisterKind("test.read", EventBand.Guest, new ActionHandler(() => seen = host.Cores[0].TscRate));
        sim.Schedule(Ms(1), read);                                              // scheduled first...
        host.ScheduleFrequencyChange(Ms(1), 0, Frequency.FromMegahertz(800));   // ...but the change lands first
        sim.Run(Ms(1));
        Assert.Equal(Frequency.FromMegahertz(800), seen);
    }

    [Fact]
    public void Hpet_counts_at_its_frequency_reports_its_period_and_Linux_sees_32_bits()
    {
        var (sim, host) = Build(CpuPresets.IntelNehalem, c => c with { Uptime = Duration.FromSeconds(300) });
        Assert.Equal(69_841_279u, host.Hpet.PeriodFemtoseconds);
        // 300 s x 14,318,180 Hz = 4,295,454,000 = 2^32 + 486,704.
        Assert.Equal(4_295_454_000UL, host.Hpet.ReadMainCounter(sim.Now));
        Assert.Equal(486_704u, host.Hpet.ReadMainCounterLow32(sim.Now));
        sim.Run(SimTime.FromDuration(Duration.FromSeconds(1)));
        Assert.Equal(4_295_454_000UL + 14_318_180UL, host.Hpet.ReadMainCounter(sim.Now));

        var (_, qemu) = Build(CpuPresets.IntelNehalem, c => c with { HpetFrequency = Hpet.QemuFrequency });
        Assert.Equal(10_000_000u, qemu.Hpet.PeriodFemtoseconds);
    }

    [Fact]
    public void Pm_timer_wraps_at_24_bits_or_32_with_the_extended_flag()
    {
        // 5 s x 3,579,545 Hz = 17,897,725 = 2^24 + 1,120,509.
        var (sim, host) = Build(CpuPresets.IntelNehalem, c => c with { Uptime = Duration.FromSeconds(5) });
        Assert.Equal(1_120_509u, host.PmTimer.Read(sim.Now));
        Assert.Equal(24, host.PmTimer.Width);
        var (sim32, wide) = Build(CpuPresets.IntelNehalem, c => c with { Uptime = Duration.FromSeconds(5), PmTimer32Bit = true });
        Assert.Equal(17_897_725u, wide.PmTimer.Read(sim32.Now));
    }

    [Fact]
    public void Pit_channel2_one_shot_counts_down_and_raises_out_at_terminal_count()
    {
        // Linux's 10 ms calibration latch: 1,193,182 / 100 = 11,931 ticks = 9,999,312,763 ps (ceiling).
        var (sim, host) = Build(CpuPresets.IntelNehalem);
        host.Pit.StartChannel2(sim.Now, 11_931);
        Assert.Equal(SimTime.FromPicoseconds(9_999_312_763), host.Pit.Channel2Deadline());
        Assert.False(host.Pit.Channel2Out(SimTime.FromPicoseconds(9_999_312_762)));
        Assert.True(host.Pit.Channel2Out(SimTime.FromPicoseconds(9_999_312_763)));
        Assert.Equal((ushort)11_931, host.Pit.Channel2Count(sim.Now));
        Assert.Equal((ushort)(11_931 - 5_965), host.Pit.Channel2Count(SimTime.FromDuration(Duration.FromMilliseconds(5)))); // 5,965.91 ticks
        Assert.Equal((ushort)0xFFFF, host.Pit.Channel2Count(SimTime.FromPicoseconds(9_999_312_763 + 838_096))); // one tick past zero wraps
        Assert.Equal(11_931, (long)host.Pit.TicksAt(Ms(10)));
    }

    [Fact]
    public void The_host_monotonic_clock_drifts_with_the_platform_crystal()
    {
        var (sim, host) = Build(CpuPresets.IntelNehalem, c => c with { Drift = Ppm.FromPartsPerMillion(10) });
        sim.Run(SimTime.FromDuration(Duration.FromSeconds(1)));
        Assert.Equal(1_000_010_000L, host.Monotonic.NanosecondsAt(sim.Now));
        Assert.Equal(14_318_323UL, host.Hpet.ReadMainCounter(sim.Now)); // 14,318,180 x 1.00001 = 14,318,323.18
    }

    [Fact]
    public void An_old_cpu_writes_only_the_low_32_bits_of_the_TSC()
    {
        var (sim, host) = Build(CpuPresets.IntelCore2 with { FullWidthTscWrite = false });
        host.ScheduleTscWrite(Ms(1), 0, 0x1_2345_6789UL);
        sim.Run(Ms(1));
        Assert.Equal(0x2345_6789UL, host.Cores[0].ReadTsc(sim.Now).Raw);
        sim.Run(Ms(2));
        Assert.Equal(0x2345_6789UL + 2_000_000, host.Cores[0].ReadTsc(sim.Now).Raw);

        var (sim64, full) = Build(CpuPresets.IntelCore2);
        full.ScheduleTscWrite(Ms(1), 0, 0x1_2345_6789UL);
        sim64.Run(Ms(1));
        Assert.Equal(0x1_2345_6789UL, full.Cores[0].ReadTsc(sim64.Now).Raw);
        Assert.Equal(2_000_000UL, full.Cores[1].ReadTsc(sim64.Now).Raw); // a write is per core
    }

    [Fact]
    public void Tsc_adjust_moves_the_TSC_and_a_TSC_write_moves_TSC_adjust()
    {
        var (sim, host) = Build(CpuPresets.IntelSkylake);
        host.ScheduleTscAdjustWrite(Ms(1), 0, 1_000);
        sim.Run(Ms(1));
        Assert.Equal(2_001_000UL, host.Cores[0].ReadTsc(sim.Now).Raw);
        Assert.Equal(1_000L, host.Cores[0].TscAdjust);

        // Writing TSC = 5,000,000 at 2 ms (counter 4,000,000) leaves TSC_ADJUST = 1,000,000.
        host.ScheduleTscWrite(Ms(2), 0, 5_000_000);
        sim.Run(Ms(2));
        Assert.Equal(5_000_000UL, host.Cores[0].ReadTsc(sim.Now).Raw);
        Assert.Equal(1_000_000L, host.Cores[0].TscAdjust);
        sim.Run(Ms(3));
        Assert.Equal(7_000_000UL, host.Cores[0].ReadTsc(sim.Now).Raw);

        var (_, nehalem) = Build(CpuPresets.IntelNehalem);
        Assert.Throws<InvalidOperationException>(() => nehalem.ScheduleTscAdjustWrite(Ms(1), 0, 5));
        Assert.Throws<InvalidOperationException>(() => nehalem.Cores[0].WriteTscAdjust(SimTime.Zero, 5));
    }

    [Fact]
    public void A_written_TSC_wraps_at_2_to_the_64()
    {
        var (sim, host) = Build(CpuPresets.IntelNehalem);
        host.ScheduleTscWrite(Ms(1), 0, ulong.MaxValue - 999);
        sim.Run(Ms(2));
        Assert.Equal(2_000_000UL - 1_000, host.Cores[0].ReadTsc(sim.Now).Raw);
    }

    [Fact]
    public void Time_of_a_TSC_value_inverts_the_read()
    {
        var (sim, host) = Build(CpuPresets.IntelNehalem, c => c with { Drift = Ppm.FromPartsPerMillion(-7) });
        var core = host.Cores[1];
        SimTime? t = core.TimeOfTsc(new TscValue(123_456_789));
        Assert.NotNull(t);
        Assert.Equal(123_456_789UL, core.ReadTsc(t.Value).Raw);
        Assert.Equal(123_456_788UL, core.ReadTsc(t.Value - Duration.FromPicoseconds(1)).Raw);
    }

    [Fact]
    public void Reading_before_the_last_change_is_refused()
    {
        var (sim, host) = Build(CpuPresets.AmdK8);
        host.ScheduleFrequencyChange(Ms(5), 0, Frequency.FromMegahertz(1_000));
        sim.Run(Ms(6));
        Assert.Throws<ArgumentOutOfRangeException>(() => host.Cores[0].ReadTsc(Ms(4)));
        Assert.Equal(8_000_000UL, host.Cores[1].ReadTsc(Ms(4)).Raw); // core 1 never changed
    }

    [Fact]
    public void Crystal_walks_are_seeded_bounded_and_reach_every_counter()
    {
        static (long[] Errors, ulong Tsc, long Mono) Run(ulong seed)
        {
            var (sim, host) = Build(CpuPresets.IntelNehalem, c => c with
            {
                Sockets = 2,
                Drift = Ppm.FromPartsPerMillion(20),
                Walk = new DriftWalk(Ppm.FromPartsPerMillion(1), Duration.FromMilliseconds(100), Ppm.FromPartsPerMillion(3)),
            }, seed);
            var errors = new List<long>();
            for (int i = 1; i <= 50; i++)
            {
                sim.Run(SimTime.FromDuration(Duration.FromMilliseconds(100 * i)));
                errors.Add(host.Crystals[0].Error.PartsPerBillion);
                errors.Add(host.Crystals[1].Error.PartsPerBillion);
            }
            return (errors.ToArray(), host.Cores[2].ReadTsc(sim.Now).Raw, host.Monotonic.NanosecondsAt(sim.Now));
        }

        var a = Run(7);
        var b = Run(7);
        var c = Run(8);
        Assert.Equal(a.Errors, b.Errors);
        Assert.Equal(a.Tsc, b.Tsc);
        Assert.NotEqual(a.Errors, c.Errors);
        Assert.All(a.Errors, e => Assert.InRange(e, 17_000L, 23_000L));
        Assert.True(a.Errors.Distinct().Count() > 10, "the walk moves");
        // The monotonic clock integrates the walking platform error: within its bounds of 5 s.
        Assert.InRange(a.Mono, 5_000_000_000L + 5 * 17_000L, 5_000_000_000L + 5 * 23_000L);
    }

    [Fact]
    public void Bad_configurations_are_refused_with_every_problem_named()
    {
        var ex = Assert.Throws<ArgumentException>(() => new Host(new HostConfig
        {
            Id = "bad",
            Cpu = CpuPresets.IntelNehalem,
            Frequency = TwoGHz,
            Sockets = 0,
            CoresPerSocket = 0,
            HpetFrequency = Frequency.FromMegahertz(1),
        }, new Simulator()));
        Assert.Contains("sockets must be at least 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("cores_per_socket must be at least 1", ex.Message, StringComparison.Ordinal);
        Assert.Contains("HPET frequency", ex.Message, StringComparison.Ordinal);

        var skew = Assert.Throws<ArgumentException>(() => new Host(new HostConfig
        {
            Id = "skew", Cpu = CpuPresets.IntelNehalem, Frequency = TwoGHz, Sockets = 2, SocketSkew = new Cycles(-1),
        }, new Simulator()));
        Assert.Contains("below zero", skew.Message, StringComparison.Ordinal);

        var mixed = Assert.Throws<ArgumentException>(() => new Host(new HostConfig
        {
            Id = "mixed", Cpu = CpuPresets.IntelSkylake with { Scaling = TscScaling.SvmRatio8_32 }, Frequency = TwoGHz,
        }, new Simulator()));
        Assert.Contains("does not exist on Vmx", mixed.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Two_hosts_share_one_simulator()
    {
        var sim = new Simulator();
        var slow = new Host(new HostConfig { Id = "slow", Cpu = CpuPresets.IntelNehalem, Frequency = TwoGHz }, sim);
        var fast = new Host(new HostConfig { Id = "fast", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(3_000) }, sim);
        fast.ScheduleCState(Ms(1), 0, CState.C6, Duration.FromMilliseconds(1));
        sim.Run(Ms(1));
        Assert.Equal(2_000_000UL, slow.Cores[0].ReadTsc(sim.Now).Raw);
        Assert.Equal(3_000_000UL, fast.Cores[0].ReadTsc(sim.Now).Raw);
    }

    [Fact]
    public void Presets_are_complete_and_distinct()
    {
        Assert.Equal(["intel-core2", "intel-nehalem", "intel-skylake", "amd-k8", "amd-zen2"], CpuPresets.All.Select(m => m.Name));
        Assert.All(CpuPresets.All, m =>
        {
            Assert.Equal(Enum.GetValues<CostClass>().Length, m.Costs.Length);
            Assert.All(m.Costs, c => Assert.True(c.Count > 0));
            Assert.False(string.IsNullOrWhiteSpace(m.Sources));
            Assert.True(m.ExitRoundTrip.Count > 0);
        });
        Assert.True(CpuPresets.IntelNehalem.InvariantTsc);
        Assert.False(CpuPresets.IntelCore2.InvariantTsc);
        Assert.Equal(Vendor.Svm, CpuPresets.AmdZen2.Vendor);
        Assert.Equal(TscScaling.VmxMultiplier16_48, CpuPresets.IntelSkylake.Scaling);
        Assert.Equal(TscScaling.SvmRatio8_32, CpuPresets.AmdZen2.Scaling);
        Assert.Same(CpuPresets.AmdK8, CpuPresets.Find("amd-k8"));
        Assert.Null(CpuPresets.Find("intel-8086"));
        Assert.Throws<ArgumentException>(() => CpuModel.CostTable((CostClass.Alu, 1)));
    }

    private sealed class ActionHandler(Action action) : IEventHandler
    {
        public void OnEvent(Simulator sim, in SimEvent e) => action();
    }
}
