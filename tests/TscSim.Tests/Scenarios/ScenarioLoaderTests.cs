using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using static TscSim.Tests.Scenarios.ScenarioText;

namespace TscSim.Tests.Scenarios;

/// <summary>Loading valid scenarios: exact values, defaults, preset resolution, positions.</summary>
public class ScenarioLoaderTests
{
    [Fact]
    public void Full_example_loads_with_exact_values()
    {
        var s = Load(Full);

        Assert.Equal("legacy-guest-to-faster-host", s.Name);
        Assert.Equal("A 2.6.18 guest moves to a faster host", s.Description);
        Assert.Equal(1UL, s.Seed);
        Assert.Equal(20_000_000_000_000L, s.Duration.Picoseconds);

        Assert.Equal(2, s.Hosts.Count);
        var slow = s.Hosts[0];
        Assert.Equal("slow", slow.Id);
        Assert.Equal("intel-nehalem", slow.Cpu);
        Assert.Equal(2_000_000_000_000L, slow.Frequency.Millihertz);
        Assert.Equal(1, slow.Sockets);
        Assert.Equal(2, slow.CoresPerSocket);
        Assert.Equal(1_200L, slow.ExitCost.Count);
        Assert.Equal(new TscSpec { Drift = Ppm.Zero, SocketSkew = Cycles.Zero, Constant = true, Nonstop = true, Scaling = false }, slow.Tsc);
        Assert.Equal(3_000_000_000_000L, s.Hosts[1].Frequency.Millihertz);
        Assert.Equal(1_000L, s.Hosts[1].ExitCost.Count); // the preset's

        var hv = s.Hypervisor;
        Assert.Equal("kvm-2011", hv.Policy);
        Assert.True(hv.TscAuto);
        Assert.Equal(TrappingOverride.Auto, hv.Trapping);
        Assert.False(hv.NotifyGuest);
        Assert.False(hv.RdtscpPassthrough);
        Assert.Equal(250L, hv.TolerancePpm);
        Assert.Null(hv.SchedulerSlice);

        var vm = Assert.Single(s.Vms);
        Assert.Equal("vm0", vm.Id);
        Assert.Equal("slow", vm.Host);
        Assert.Equal(2, vm.Vcpus);
        Assert.Equal([0, 1], vm.Pin!.Value);
        Assert.Equal(2_000_000L, vm.TscKhz);
        Assert.Equal(new HintsSpec { FixedRate = true, SmpStable = true }, vm.Hints);
        Assert.Equal(new GuestSpec { Profile = "linux-2.6.18", Clocksource = null }, vm.Guest);
        Assert.Equal("loop:\n  call clock_gettime\n  work 10000cycles\n  jmp loop\n", vm.Workload);
        Assert.Equal(Duration.Zero, vm.Start);

        Assert.Equal(2, s.Events.Count);
        var migrate = Assert.IsType<LiveMigrateEvent>(s.Events[0]);
        Assert.Equal((10_000_000_000_000L, "vm0", "fast", 100_000_000_000L, 0),
            (migrate.At.Picoseconds, migrate.Vm, migrate.To, migrate.Downtime.Picoseconds, migrate.Index));
        var cpufreq = Assert.IsType<CpufreqEvent>(s.Events[1]);
        Assert.Equal((5_000_000_000_000L, "slow", true, 1_000_000_000_000L, 1),
            (cpufreq.At.Picoseconds, cpufreq.Host, cpufreq.Cores.IsAll, cpufreq.Frequency.Millihertz, cpufreq.Index));
        Assert.Equal(["cpufreq", "live_migrate"], s.EventsInTimeOrder.Select(e => e.Kind));

        Assert.Equal(2, s.Expect.Count);
        Assert.Equal(("vm0.vcpu0.skew_ns.max_abs", ExpectOp.Less, 200_000_000.0), (s.Expect[0].Path, s.Expect[0].Op, s.Expect[0].Literal.Number!.Value));
        Assert.Equal(("vm0.cross_vcpu.violations", ExpectOp.Equal, 0.0), (s.Expect[1].Path, s.Expect[1].Op, s.Expect[1].Literal.Number!.Value));
        Assert.Equal(20_000, s.Measurement.ReadsCsvMaxRows);
    }

    [Fact]
    public void Omitted_keys_take_their_defaults_and_the_presets_values()
    {
        var s = Load(Minimal);

        Assert.Null(s.Description);
        Assert.Equal(1UL, s.Seed);
        Assert.Empty(s.Events);
        Assert.Empty(s.Expect);
        Assert.Equal(new MeasurementSpec { ReadsCsvMaxRows = 20_000, ReadsCsvInterval = null }, s.Measurement);

        var host = s.Hosts[0];
        Assert.Equal((1, 2, 2), (host.Sockets, host.CoresPerSocket, host.Cores));
        Assert.Equal(Duration.Zero, host.Uptime);
        Assert.Equal(CpuPresets.IntelNehalem.ExitRoundTrip, host.ExitCost);
        Assert.Equal(new TscSpec { Constant = true, Nonstop = true, Scaling = false }, host.Tsc);

        Assert.Equal(HypervisorSpec.FromPreset("kvm-2011"), s.Hypervisor);
        Assert.True(s.Hypervisor.TscAuto);
        Assert.True(s.Hypervisor.Scaling);
        Assert.Equal(250L, s.Hypervisor.TolerancePpm);

        var vm = s.Vms[0];
        Assert.Equal(1, vm.Vcpus);
        Assert.Null(vm.Pin);
        Assert.Null(vm.TscKhz);
        Assert.Equal(new HintsSpec(), vm.Hints);
        Assert.Equal(new GuestSpec { Profile = "linux-modern" }, vm.Guest);
        Assert.Equal(Duration.Zero, vm.Start);
    }

    [Theory]
    [InlineData("intel-core2", true, false, false, 1_500)]
    [InlineData("intel-skylake", true, true, true, 600)]
    [InlineData("amd-k8", false, false, false, 2_000)]
    [InlineData("amd-zen2", true, true, true, 1_350)]
    public void Host_tsc_flags_and_exit_cost_come_from_the_cpu_preset(string cpu, bool constant, bool nonstop, bool scaling, long exitCost)
    {
        var host = Load(Replace(Minimal, "cpu:", $"    cpu: {cpu}")).Hosts[0];

        Assert.Equal((constant, nonstop, scaling, exitCost), (host.Tsc.Constant, host.Tsc.Nonstop, host.Tsc.Scaling, host.ExitCost.Count));
    }

    [Fact]
    public void Written_host_values_override_the_preset_and_reach_the_host_config()
    {
        var host = Load(Replace(Minimal, "frequency:", """
                frequency: 2.4GHz
                sockets: 2
                cores_per_socket: 4
                uptime: 1h
                exit_cost: 900cycles
                tsc: { drift: -0.125ppm, socket_skew: 5000cycles, constant: false, nonstop: false, scaling: true }
            """)).Hosts[0];

        var config = host.ToHostConfig();
        Assert.Equal(2_400_000_000_000L, config.Frequency.Millihertz);
        Assert.Equal(8, config.Cores);
        Assert.Equal(3_600_000_000_000_000L, config.Uptime.Picoseconds);
        Assert.Equal(-125L, config.Drift.PartsPerBillion);
        Assert.Equal(5_000L, config.SocketSkew.Count);
        Assert.Equal(900L, config.Cpu.ExitRoundTrip.Count);
        Assert.False(config.Cpu.ConstantTsc);
        Assert.False(config.Cpu.NonstopTsc);
        Assert.Equal(TscScaling.VmxMultiplier16_48, config.Cpu.Scaling); // Nehalem has none; VMX scaling when asked for
        Assert.Empty(config.Problems());
    }

    [Fact]
    public void Hypervisor_fields_override_the_policy_preset()
    {
        var s = Load(Minimal + """

            hypervisor:
              policy: hyperv
              trapping: on
              tolerance_ppm: 100
              scaling: false
              scheduler_slice: 10ms
              vmm: direct
            """);

        var hv = s.Hypervisor;
        Assert.Equal("hyperv", hv.Policy);
        Assert.False(hv.NotifyGuest); // the hyperv preset's: re-enlightenment does not need the proposal's notify_guest
        Assert.Equal(VmmKind.Direct, hv.Vmm);
        Assert.Equal(VmmKind.Qemu, Load(Minimal).Hypervisor.Vmm); // QEMU by default
        Assert.Equal(TrappingOverride.On, hv.Trapping);
        Assert.Equal(100L, hv.TolerancePpm);
        Assert.False(hv.Scaling);
        Assert.Equal(Duration.FromMilliseconds(10), hv.SchedulerSlice);
        var config = hv.ToConfig();
        Assert.Equal((PolicyKind.HyperV, TrappingOverride.On, 100L, false, VmmKind.Direct), (config.Kind, config.Trapping, config.TolerancePpm, config.UseScaling, config.Vmm));
    }

    [Fact]
    public void Guest_may_be_a_map_with_a_forced_clocksource()
    {
        var vm = Load(Replace(Minimal, "host: h0", "    host: h0\n    guest: { profile: freebsd-8, clocksource: acpi_pm }")).Vms[0];

        Assert.Equal(new GuestSpec { Profile = "freebsd-8", Clocksource = ClocksourceKind.AcpiPm }, vm.Guest);
        Assert.Equal(ClocksourceKind.AcpiPm, vm.Guest.ToProfile().Clocksource);
    }

    [Fact]
    public void Workload_positions_map_to_the_file_for_a_block_scalar()
    {
        var vm = Load(Minimal).Vms[0];

        // Line 11 is "      loop:" (content indented 6), line 12 "        jmp loop".
        Assert.Equal(new SourcePosition("s.yaml", 11, 7), vm.WorkloadPosition);
        Assert.Equal(new SourcePosition("s.yaml", 12, 9), vm.MapWorkloadPosition(2, 3));
    }

    [Fact]
    public void Workload_positions_map_to_the_file_for_one_line_scalars()
    {
        var plain = Load(Replace(Minimal, "workload:", "    workload: hlt").Replace("      loop:\n        jmp loop", "")).Vms[0];
        var quoted = Load(Replace(Minimal, "workload:", "    workload: \"hlt\"").Replace("      loop:\n        jmp loop", "")).Vms[0];

        Assert.Equal(new SourcePosition("s.yaml", 10, 15), plain.MapWorkloadPosition(1, 1));
        Assert.Equal(new SourcePosition("s.yaml", 10, 17), quoted.MapWorkloadPosition(1, 2));
    }

    [Fact]
    public void Workload_keeps_its_text_exactly_with_a_chomping_indicator()
    {
        var vm = Load(Replace(Minimal, "workload:", "    workload: |-")).Vms[0];

        Assert.Equal("loop:\n  jmp loop", vm.Workload);
    }

    [Fact]
    public void Positions_of_nodes_are_kept_but_do_not_take_part_in_equality()
    {
        var a = Load(Minimal);
        var b = ScenarioLoader.LoadText("\n\n" + Minimal, "other.yaml");

        Assert.Equal(new SourcePosition("s.yaml", 4, 5), a.Hosts[0].Position);
        Assert.Equal(new SourcePosition("other.yaml", 6, 5), b.Hosts[0].Position);
        Assert.Equal(a, b);
        Assert.NotEqual(a, a with { Seed = 2 });
        Assert.NotEqual(a, a with { Vms = [a.Vms[0] with { Workload = "hlt\n" }] });
    }

    [Fact]
    public void Every_event_kind_loads()
    {
        var s = Load(TwoHosts + """

            events:
              - at: 2s
                cpufreq: { host: big, cores: [0, 3], frequency: 1.2GHz }
              - at: 3s
                cstate: { host: big, cores: all, state: C1E, duration: 50ms }
              - at: 4s
                migrate_vcpu: { vm: vm0, vcpu: 1, to_core: 3 }
              - at: 5s
                tsc_write: { host: small, value: 0x10 }
              - at: 6s
                policy: { trapping: off, notify_guest: true }
              - at: 7s
                live_migrate: { vm: vm0, to: small }
            """);

        Assert.Equal(
        [
            new CpufreqEvent { At = Duration.FromSeconds(2), Index = 0, Host = "big", Cores = CoreSelection.Of(0, 3), Frequency = Frequency.FromMegahertz(1_200) },
            new CstateEvent { At = Duration.FromSeconds(3), Index = 1, Host = "big", Cores = CoreSelection.All, State = CState.C1E, Duration = Duration.FromMilliseconds(50) },
            new MigrateVcpuEvent { At = Duration.FromSeconds(4), Index = 2, Vm = "vm0", Vcpu = 1, ToCore = 3 },
            new TscWriteEvent { At = Duration.FromSeconds(5), Index = 3, Host = "small", Cores = CoreSelection.All, Value = 16 },
            new PolicyEvent { At = Duration.FromSeconds(6), Index = 4, Trapping = TrappingOverride.Off, TscAuto = null, NotifyGuest = true },
            new LiveMigrateEvent { At = Duration.FromSeconds(7), Index = 5, Vm = "vm0", To = "small", Downtime = Duration.FromMilliseconds(100) },
        ], s.Events);
    }

    [Fact]
    public void Events_at_the_same_time_keep_their_file_order_when_sorted()
    {
        var s = Load(TwoHosts + """

            events:
              - at: 5s
                policy: { trapping: on }
              - at: 2s
                policy: { trapping: off }
              - at: 5s
                policy: { tsc_auto: false }
            """);

        Assert.Equal([1, 0, 2], s.EventsInTimeOrder.Select(e => e.Index));
    }

    [Fact]
    public void Anchors_and_aliases_may_share_small_parts()
    {
        string text = Replace(Minimal, "workload: |", "    workload: &prog |") + """

              - id: vm1
                host: h0
                workload: *prog
            """;

        var s = Load(text);

        Assert.Equal("loop:\n  jmp loop\n", s.Vms[1].Workload);
    }
}
