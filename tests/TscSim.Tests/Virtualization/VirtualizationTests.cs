using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Virtualization;

public class VirtualizationTests
{
    private sealed class Rig
    {
        public Rig(CpuModel cpu, HypervisorConfig policy, string program, VmConfig? vm = null, Func<HostConfig, HostConfig>? host = null,
            int[]? pin = null, long mhz = 2_000)
        {
            Sim = new Simulator(1);
            var hc = new HostConfig { Id = "h", Cpu = cpu, Frequency = Frequency.FromMegahertz(mhz), CoresPerSocket = 2 };
            Host = new Host(host is null ? hc : host(hc), Sim);
            Hypervisor = new Hypervisor(new GuestExecutor(Sim), policy);
            Vm = Hypervisor.CreateVm(vm ?? new VmConfig { Id = "vm0" }, Host, Assembler.Assemble(program), Log, pin);
        }

        public Simulator Sim { get; }
        public Host Host { get; }
        public Hypervisor Hypervisor { get; }
        public Vm Vm { get; }
        public ObservationLog Log { get; } = new();

        public Rig Run(Duration? until = null)
        {
            Vm.Start(Sim.Now);
            Sim.Run(SimTime.FromDuration(until ?? Duration.FromSeconds(1)));
            return this;
        }
    }

    private static HypervisorConfig Kvm2011(TrappingOverride trapping = TrappingOverride.Auto, bool tscAuto = true, bool passthrough = false) =>
        HypervisorConfig.Find("kvm-2011")! with { Trapping = trapping, TscAuto = tscAuto, RdtscpPassthrough = passthrough };

    private const string ReadBoth = "rdtsc\nrdtscp\nrdtsc\nrdtscp\nhlt";

    [Fact]
    public void On_vmx_rdtscp_exits_whenever_rdtsc_does_even_with_passthrough_asked()
    {
        var rig = new Rig(CpuPresets.IntelNehalem, Kvm2011(TrappingOverride.On, passthrough: true), ReadBoth).Run();
        var exits = rig.Vm.Platforms[0].Exits;
        Assert.Equal(2, exits.Rdtsc);
        Assert.Equal(2, exits.Rdtscp);
        Assert.Equal(2, exits.ByCode[16]);
        Assert.Equal(2, exits.ByCode[51]);
        Assert.All(rig.Log.TscReads, r => Assert.True(r.Exited));
    }

    [Fact]
    public void On_svm_rdtscp_stays_native_when_only_rdtsc_is_intercepted()
    {
        var rig = new Rig(CpuPresets.AmdZen2, Kvm2011(TrappingOverride.On, passthrough: true), ReadBoth).Run();
        var exits = rig.Vm.Platforms[0].Exits;
        Assert.Equal(2, exits.Rdtsc);
        Assert.Equal(0, exits.Rdtscp);
        Assert.Equal(2, exits.ByCode[0x6E]);
        Assert.False(exits.ByCode.ContainsKey(0x87));
        Assert.Equal([true, false, true, false], rig.Log.TscReads.Select(r => r.Exited));

        // Without passthrough SVM traps both, with its own exit code for RDTSCP.
        var both = new Rig(CpuPresets.AmdZen2, Kvm2011(TrappingOverride.On), ReadBoth).Run();
        Assert.Equal(2, both.Vm.Platforms[0].Exits.ByCode[0x87]);
    }

    [Fact]
    public void Vmx_rdtscp_without_enable_rdtscp_is_invalid_opcode_before_any_exit()
    {
        var rig = new Rig(CpuPresets.IntelNehalem, Kvm2011(TrappingOverride.On), "rdtscp\nhlt");
        rig.Vm.Platforms[0].Controls.EnableRdtscp = false;
        rig.Run();
        Assert.Equal(GuestFaultKind.InvalidOpcode, rig.Vm.Vcpus[0].Fault!.Kind);
        Assert.Equal(0, rig.Vm.Platforms[0].Exits.Total);

        // A host without RDTSCP (Core 2) leaves the control clear: the guest gets #UD too.
        var core2 = new Rig(CpuPresets.IntelCore2, Kvm2011(TrappingOverride.Off), "rdtscp\nhlt").Run();
        Assert.Equal(GuestFaultKind.InvalidOpcode, core2.Vm.Vcpus[0].Fault!.Kind);
    }

    [Fact]
    public void Scaling_ratios_are_exact_for_hand_computed_cases()
    {
        // VMX 16.48: 1.5 GHz on 3 GHz is exactly 2^47; 2 GHz on 3 GHz is 0xAAAA_AAAA_AAAA (floor),
        // which turns 3,000,000,000 host ticks into 1,999,999,999 (truncation, not 2,000,000,000).
        Assert.Equal(0x8000_0000_0000UL, TscScalingMath.RatioFor(TscScaling.VmxMultiplier16_48, 1_500_000, 3_000_000));
        ulong twoThirds = TscScalingMath.RatioFor(TscScaling.VmxMultiplier16_48, 2_000_000, 3_000_000)!.Value;
        Assert.Equal(0xAAAA_AAAA_AAAAUL, twoThirds);
        Assert.Equal(1_999_999_999UL, TscScalingMath.Scale(3_000_000_000, twoThirds, 48));
        // SVM 8.32: 3.5 = 0x3_8000_0000 (the Xen commit's example); 256x is beyond the 8 integer bits.
        Assert.Equal(0x3_8000_0000UL, TscScalingMath.RatioFor(TscScaling.SvmRatio8_32, 3_500_000, 1_000_000));
        Assert.Null(TscScalingMath.RatioFor(TscScaling.SvmRatio8_32, 256_000_000, 1_000_000));
        Assert.Null(TscScalingMath.RatioFor(TscScaling.None, 1, 1));
        // The guest TSC adds the offset after scaling, modulo 2^64.
        Assert.Equal(1_500UL - 2, TscScalingMath.GuestTsc(3_000, -2, 0x8000_0000_0000UL, 48));
        Assert.Equal(ulong.MaxValue, TscScalingMath.GuestTsc(0, -1, 1UL << 32, 32));
    }

    [Theory]
    [InlineData(2_999_250, true)]
    [InlineData(2_999_249, false)]
    [InlineData(3_000_750, true)]
    [InlineData(3_000_751, false)]
    public void The_tolerance_window_edges_are_exact(long guestKhz, bool inside)
    {
        Assert.Equal((2_999_250L, 3_000_750L), TscScalingMath.ToleranceWindow(3_000_000, 250));
        Assert.Equal(inside, TscScalingMath.WithinTolerance(guestKhz, 3_000_000, 250));
    }

    [Theory]
    [InlineData("intel-nehalem", 3_000_750, false, false)]  // inside: runs at host rate, no trap
    [InlineData("intel-nehalem", 3_000_751, true, false)]   // outside, no scaling: trap
    [InlineData("intel-skylake", 3_000_751, false, true)]   // outside, scaling serves it
    [InlineData("amd-zen2", 2_999_249, false, true)]
    [InlineData("amd-k8", 2_999_249, true, false)]
    public void A_requested_rate_traps_only_outside_the_tolerance_without_scaling(string cpu, long khz, bool traps, bool scales)
    {
        var rig = new Rig(CpuPresets.Find(cpu)!, Kvm2011(tscAuto: false), "hlt", new VmConfig { Id = "vm0", TscKhz = khz }, mhz: 3_000);
        Assert.Equal(traps, rig.Vm.Trapping);
        Assert.Equal(scales, rig.Vm.ScalingActive);
    }

    [Fact]
    public void Tsc_auto_traps_on_an_unstable_host_and_not_on_a_stable_one()
    {
        Assert.True(new Rig(CpuPresets.IntelCore2, Kvm2011(), "hlt").Vm.Trapping);   // stops in C3
        Assert.True(new Rig(CpuPresets.AmdK8, Kvm2011(), "hlt").Vm.Trapping);        // follows P-states
        var skewed = new Rig(CpuPresets.IntelNehalem, Kvm2011(), "hlt", host: c => c with { Sockets = 2, SocketSkew = new Cycles(1_000) });
        Assert.True(skewed.Vm.Trapping);
        Assert.Contains("not synchronized", skewed.Vm.TrappingReason, StringComparison.Ordinal);
        var stable = new Rig(CpuPresets.IntelNehalem, Kvm2011(), "hlt");
        Assert.False(stable.Vm.Trapping);
        Assert.Contains("invariant", stable.Vm.TrappingReason, StringComparison.Ordinal);
    }

    [Fact]
    public void Without_tsc_auto_only_the_hints_make_it_trap()
    {
        Assert.False(new Rig(CpuPresets.IntelCore2, Kvm2011(tscAuto: false), "hlt").Vm.Trapping);
        Assert.True(new Rig(CpuPresets.IntelCore2, Kvm2011(tscAuto: false), "hlt", new VmConfig { Id = "vm0", SmpStable = true }).Vm.Trapping);
        Assert.False(new Rig(CpuPresets.IntelCore2, Kvm2011(tscAuto: false), "hlt", new VmConfig { Id = "vm0", FixedRate = true }).Vm.Trapping);
        var k8 = new Rig(CpuPresets.AmdK8, Kvm2011(tscAuto: false), "hlt", new VmConfig { Id = "vm0", FixedRate = true });
        Assert.True(k8.Vm.Trapping);
        Assert.StartsWith("fixed_rate hint", k8.Vm.TrappingReason, StringComparison.Ordinal);
    }

    [Fact]
    public void The_override_wins_both_ways()
    {
        Assert.True(new Rig(CpuPresets.IntelNehalem, Kvm2011(TrappingOverride.On), "hlt").Vm.Trapping);
        var off = new Rig(CpuPresets.IntelCore2, Kvm2011(TrappingOverride.Off), "hlt", new VmConfig { Id = "vm0", SmpStable = true, TscKhz = 1_000_000 });
        Assert.False(off.Vm.Trapping);
        Assert.Equal("trapping=off (override)", off.Vm.TrappingReason);
    }

    [Fact]
    public void Other_hypervisors_presets_decide_as_documented()
    {
        HypervisorConfig P(string n) => HypervisorConfig.Find(n)!;
        Assert.True(new Rig(CpuPresets.IntelNehalem, P("xen-always-emulate"), "hlt").Vm.Trapping);
        Assert.False(new Rig(CpuPresets.IntelCore2, P("xen-native"), "hlt").Vm.Trapping);
        Assert.True(new Rig(CpuPresets.IntelCore2, P("xen-default"), "hlt").Vm.Trapping);
        Assert.False(new Rig(CpuPresets.IntelNehalem, P("xen-default"), "hlt").Vm.Trapping);
        Assert.False(new Rig(CpuPresets.IntelCore2, P("kvm-modern"), "hlt").Vm.Trapping);
        Assert.False(new Rig(CpuPresets.IntelNehalem, P("hyperv"), "hlt").Vm.Trapping);
        // kvm-modern (vmm: direct) catches up for a faster guest rate and refuses a slower one without scaling.
        var direct = P("kvm-modern") with { Vmm = VmmKind.Direct };
        Assert.True(new Rig(CpuPresets.IntelNehalem, direct, "hlt", new VmConfig { Id = "vm0", TscKhz = 2_500_000 }).Vm.CatchUp);
        var ex = Assert.Throws<InvalidOperationException>(() =>
            new Rig(CpuPresets.IntelNehalem, direct, "hlt", new VmConfig { Id = "vm0", TscKhz = 1_000_000 }));
        Assert.Contains("below hardware speed", ex.Message, StringComparison.Ordinal);
        // Under QEMU (the default VMM) neither reaches KVM: QEMU refuses both without scaling hardware.
        foreach (long khz in new[] { 2_500_000L, 1_000_000L })
        {
            var qemu = Assert.Throws<InvalidOperationException>(() =>
                new Rig(CpuPresets.IntelNehalem, P("kvm-modern"), "hlt", new VmConfig { Id = "vm0", TscKhz = khz }));
            Assert.Contains($"TSC frequency mismatch between VM ({khz} kHz) and host (2000000 kHz), and TSC scaling unavailable", qemu.Message, StringComparison.Ordinal);
            Assert.EndsWith("kvm_init_vcpu: kvm_arch_init_vcpu failed (0): Operation not supported", qemu.Message, StringComparison.Ordinal);
        }
        // Within QEMU's ±250 ppm (500 kHz of 2 GHz) it asks KVM, whose tolerance makes it a no-op.
        var near = new Rig(CpuPresets.IntelNehalem, P("kvm-modern"), "hlt", new VmConfig { Id = "vm0", TscKhz = 2_000_500 }).Vm;
        Assert.False(near.CatchUp);
        Assert.Equal(2_000_500, near.VirtualTscKhz);
        Assert.Equal(6, HypervisorConfig.Presets.Length);
    }

    [Fact]
    public void Kvm_refuses_a_scaling_ratio_beyond_the_hardware_range_and_the_2011_policy_traps_instead()
    {
        // SVM's ratio MSR has 8 integer bits: 3 GHz on a 10 MHz host is a ratio of 300, out of range.
        var vm = new VmConfig { Id = "vm0", TscKhz = 3_000_000 };
        var ex = Assert.Throws<InvalidOperationException>(() => new Rig(CpuPresets.AmdZen2, HypervisorConfig.Find("kvm-modern")!, "hlt", vm, mhz: 10));
        Assert.Contains("Invalid TSC scaling ratio", ex.Message, StringComparison.Ordinal);
        var trapped = new Rig(CpuPresets.AmdZen2, HypervisorConfig.Find("kvm-2011")!, "hlt", vm, mhz: 10).Vm;
        Assert.True(trapped.Trapping);
        Assert.False(trapped.ScalingActive);
        // 255 × is still in range: scaled, not trapped.
        var scaled = new Rig(CpuPresets.AmdZen2, HypervisorConfig.Find("kvm-2011")!, "hlt", new VmConfig { Id = "vm0", TscKhz = 2_550_000 }, mhz: 10).Vm;
        Assert.True(scaled.ScalingActive);
        Assert.False(scaled.Trapping);
    }

    [Fact]
    public void Untrapped_guest_tsc_is_offset_to_zero_at_vm_creation_and_scaled()
    {
        // Skylake host at 3 GHz up for 1 s; the VM asks for 1.5 GHz: ratio 2^47, guest TSC 0 at
        // creation; RDTSC issued after 3,000,000 cycles (1 ms) reads 1,500,000.
        var rig = new Rig(CpuPresets.IntelSkylake, HypervisorConfig.Find("kvm-modern")!, "work 3000000cycles\nrdtsc\nhlt",
            new VmConfig { Id = "vm0", TscKhz = 1_500_000 }, host: c => c with { Uptime = Duration.FromSeconds(1) }, mhz: 3_000).Run();
        Assert.Equal(0x8000_0000_0000UL, rig.Vm.Ratio);
        var read = Assert.Single(rig.Log.TscReads);
        Assert.Equal(1_500_000UL, read.Value);
        Assert.False(read.Exited);
    }

    [Fact]
    public void The_emulated_tsc_follows_the_reference_clock_at_the_vm_rate()
    {
        // Nehalem at 2 GHz, VM asks for 1 GHz without scaling: trapped. RDTSC issues at 1 ms;
        // the handler runs half a round trip later (500 cycles = 250 ns): the host monotonic
        // clock reads 1,000,250 ns, so the 1 GHz emulated TSC reads 1,000,250.
        var rig = new Rig(CpuPresets.IntelNehalem, Kvm2011(), "work 2000000cycles\nrdtsc\nhlt", new VmConfig { Id = "vm0", TscKhz = 1_000_000 }).Run();
        var read = Assert.Single(rig.Log.TscReads);
        Assert.True(read.Exited);
        Assert.Equal(1_000_250UL, read.Value);
        Assert.Equal(1_000_000_000L, read.TimePs);
    }

    [Fact]
    public void Exit_cycles_are_exits_times_their_configured_cost_exactly()
    {
        // Nehalem round trip 1,000 cycles; RDTSC handler 150, HLT handler 100:
        // 10 x 1,150 + 1,100 = 12,600 exit cycles.
        var rig = new Rig(CpuPresets.IntelNehalem, Kvm2011(TrappingOverride.On), string.Concat(Enumerable.Repeat("rdtsc\n", 10)) + "hlt").Run();
        var exits = rig.Vm.Platforms[0].Exits;
        Assert.Equal(10, exits.Rdtsc);
        Assert.Equal(1, exits.Hlt);
        Assert.Equal(11, exits.Total);
        Assert.Equal(12_600, exits.Cycles);
        Assert.Equal(12_600, rig.Vm.Vcpus[0].ExitCycles);
        Assert.Equal(11, rig.Vm.Vcpus[0].Exits);
        Assert.Equal(0, rig.Vm.Vcpus[0].GuestCycles);
        // The vCPU's time advanced by exactly those cycles: 12,600 at 2 GHz = 6,300 ns.
        Assert.Equal(6_300_000L, rig.Vm.Vcpus[0].LocalTime.Picoseconds);
    }

    private const string TwoReaders = """
        loop:   rdtsc
                work 700cycles
                jmp loop
        """;

    [Fact]
    public void A_trapped_tsc_is_monotonic_across_vcpus_on_drifting_sockets_and_a_native_one_is_not()
    {
        // Socket 1 runs on its own crystal, 200 ppm fast, and starts 2,000,000 cycles ahead. KVM
        // hides the static skew at creation (unstable host: per-vCPU offsets), but after 10 ms the
        // drift has opened 4,000 ticks, far more than the ~725 ticks between the vCPUs' reads.
        Func<HostConfig, HostConfig> drifting = c => c with
        {
            Sockets = 2, SocketSkew = new Cycles(2_000_000), SocketDrift = [Ppm.Zero, Ppm.FromPartsPerMillion(200)],
        };
        var trapped = new Rig(CpuPresets.IntelNehalem, Kvm2011(TrappingOverride.On), TwoReaders,
            new VmConfig { Id = "vm0", Vcpus = 2 }, drifting, pin: [0, 2]).Run(Duration.FromMilliseconds(10));
        var values = trapped.Log.TscReads.Select(r => r.Value).ToList();
        Assert.True(values.Count > 1_000);
        Assert.All(values.Zip(values.Skip(1)), p => Assert.True(p.Second > p.First, $"{p.Second} after {p.First}"));

        var native = new Rig(CpuPresets.IntelNehalem, Kvm2011(TrappingOverride.Off), TwoReaders,
            new VmConfig { Id = "vm0", Vcpus = 2 }, drifting, pin: [0, 2]).Run(Duration.FromMilliseconds(10));
        var nv = native.Log.TscReads.Select(r => r.Value).ToList();
        Assert.Contains(nv.Zip(nv.Skip(1)), p => p.Second < p.First);
        // At creation the per-vCPU offsets hid the 2,000,000-cycle skew: the first reads are close.
        Assert.InRange((long)(nv[1] - nv[0]), -1_000L, 1_000L);
    }

    [Fact]
    public void A_host_tsc_marked_unstable_starts_trapping_then_without_a_jump()
    {
        var rig = new Rig(CpuPresets.IntelNehalem, Kvm2011(), TwoReaders);
        Assert.False(rig.Vm.Trapping);
        var mark = rig.Sim.RegisterKind("test.mark", EventBand.Hypervisor,
            new Isa_Action(() => rig.Vm.MarkHostTscUnstable("KVM discovered backwards TSC")));
        rig.Sim.Schedule(SimTime.FromDuration(Duration.FromMilliseconds(1)), mark);
        rig.Run(Duration.FromMilliseconds(2));
        Assert.True(rig.Vm.Trapping);
        Assert.Equal(2, rig.Vm.Changes.Count);
        Assert.Equal(SimTime.FromDuration(Duration.FromMilliseconds(1)), rig.Vm.Changes[1].Time);
        Assert.Contains("backwards TSC", rig.Vm.Changes[1].Reason, StringComparison.Ordinal);
        var interval = Assert.Single(rig.Vm.TrappedIntervals());
        Assert.Null(interval.To);
        Assert.False(rig.Vm.GuestToldTrapped); // notify_guest off: the guest is not told
        var reads = rig.Log.TscReads;
        int first = reads.FindIndex(r => r.Exited);
        Assert.True(first > 0);
        // Across the switch the TSC keeps its pace: the step equals the neighbouring steps within 1%.
        long before = (long)(reads[first - 1].Value - reads[first - 2].Value);
        long across = (long)(reads[first].Value - reads[first - 1].Value);
        Assert.InRange(across, before * 99 / 100, before * 101 / 100 + 1_100); // + the exit's own delay
    }

    [Fact]
    public void Notify_guest_tells_the_guest_about_every_change()
    {
        var policy = Kvm2011() with { NotifyGuest = true };
        var rig = new Rig(CpuPresets.IntelNehalem, policy, TwoReaders);
        var mark = rig.Sim.RegisterKind("test.mark", EventBand.Hypervisor, new Isa_Action(() => rig.Vm.MarkHostTscUnstable("test")));
        rig.Sim.Schedule(SimTime.FromDuration(Duration.FromMilliseconds(1)), mark);
        rig.Run(Duration.FromMilliseconds(2));
        Assert.True(rig.Vm.GuestToldTrapped);
        Assert.Equal(1, rig.Vm.Notifications);
        Assert.Equal(8, PvclockAbi.TscTrappedBit);
    }

    [Fact]
    public void A_guest_tsc_write_restarts_the_emulated_tsc_from_the_written_value()
    {
        // Trapped VM at 1 GHz (Nehalem host, 2 GHz): WRMSR IA32_TSC = 5,000,000 exits (MSR), then
        // RDTSC. Writes: mov x3 = 3 cycles (1.5 ns), wrmsr handler at 1.5 ns + 250 ns.
        // RDTSC issues after the WRMSR's exit (1,000 + 200 cycles = 600 ns) at 601.5 ns; its handler
        // runs 250 ns later, 600 ns after the write's handler: 5,000,000 + 600 ticks at 1 GHz.
        const string program = "mov rcx, 0x10\nmov rdx, 0\nmov rax, 5000000\nwrmsr\nrdtsc\nhlt";
        var rig = new Rig(CpuPresets.IntelNehalem, Kvm2011(), program, new VmConfig { Id = "vm0", TscKhz = 1_000_000 }).Run();
        Assert.True(rig.Vm.Trapping);
        var read = Assert.Single(rig.Log.TscReads);
        Assert.True(read.Exited);
        Assert.Equal(5_000_600UL, read.Value);
        Assert.Equal(1, rig.Vm.Platforms[0].Exits.Msr);
    }

    [Fact]
    public void Rdmsr_of_ia32_tsc_traps_with_the_rest_of_the_rdtsc_family()
    {
        var rig = new Rig(CpuPresets.IntelNehalem, HypervisorConfig.Find("xen-always-emulate")!, "rdtsc\nmov rcx, 0x10\nrdmsr\nrdtsc\nhlt").Run();
        Assert.Equal([true, true, true], rig.Log.TscReads.Select(r => r.Exited));
        Assert.Equal(1, rig.Vm.Platforms[0].Exits.Msr);
        var v = rig.Log.TscReads.Select(r => r.Value).ToList();
        Assert.True(v[0] < v[1] && v[1] < v[2]);
    }

    [Fact]
    public void Rdpid_is_invalid_in_a_guest_on_a_cpu_without_it()
    {
        var rig = new Rig(CpuPresets.IntelSkylake, Kvm2011(TrappingOverride.Off), "rdpid rax\nhlt").Run();
        Assert.Equal(GuestFaultKind.InvalidOpcode, rig.Vm.Vcpus[0].Fault!.Kind);
        var zen = new Rig(CpuPresets.AmdZen2, Kvm2011(TrappingOverride.Off), "rdpid rax\nhlt").Run();
        Assert.Null(zen.Vm.Vcpus[0].Fault);
    }

    [Fact]
    public void Hyperv_emulates_after_a_rate_changing_migration_until_the_guest_acknowledges()
    {
        var sim = new Simulator(1);
        var a = new Host(new HostConfig { Id = "a", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000) }, sim);
        var b = new Host(new HostConfig { Id = "b", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(3_000) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("hyperv")!);
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = 2 }, a, Assembler.Assemble("loop: work 1000cycles\njmp loop"));
        vm.Start(SimTime.Zero);
        hv.ScheduleLiveMigration(SimTime.FromDuration(Duration.FromMicroseconds(100)), vm, b, Duration.FromMicroseconds(10));
        hv.ScheduleMigrateVcpu(SimTime.FromDuration(Duration.FromMicroseconds(200)), vm, 0, 1);
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(300)));
        Assert.True(vm.Trapping); // a vCPU move re-evaluated the policy and emulation went on
        vm.AcknowledgeReenlightenment();
        sim.Run(SimTime.FromDuration(Duration.FromMicroseconds(400)));
        Assert.False(vm.Trapping);
    }

    [Fact]
    public void A_vm_created_on_a_host_already_marked_unstable_knows_it()
    {
        var sim = new Simulator(1);
        var h = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000) }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), Kvm2011());
        hv.UnstableHosts[h] = "KVM discovered backwards TSC";
        var vm = hv.CreateVm(new VmConfig { Id = "vm1" }, h, Assembler.Assemble("hlt"));
        Assert.True(vm.Trapping);
        Assert.True(vm.Kvmclock.BackwardsTscObserved);
        Assert.Throws<ArgumentException>(() => hv.CreateVm(new VmConfig { Id = "big", Vcpus = 65 }, h, Assembler.Assemble("hlt")));
    }

    private sealed class Isa_Action(Action action) : IEventHandler
    {
        public void OnEvent(Simulator sim, in SimEvent e) => action();
    }
}
