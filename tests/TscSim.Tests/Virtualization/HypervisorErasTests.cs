using TscSim.Core.Abi;
using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using TscSim.Tests.Guest;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Virtualization;

/// <summary>
/// Issue 18: each hypervisor as its era's code behaved (kvm-2011 = 2.6.37/38 KVM, kvm-modern =
/// 6.x x86.c, QEMU's rate handling, Xen's offsets, Hyper-V re-enlightenment, Xen's published cost).
/// </summary>
public class HypervisorErasTests
{
    private static SimTime Ms(double ms) => SimTime.FromPicoseconds((long)(ms * 1_000_000_000));

    private static HostConfig HostOf(string id, long mhz, CpuModel? cpu = null, int sockets = 1, long skew = 0) => new()
    {
        Id = id, Cpu = cpu ?? CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(mhz), CoresPerSocket = 2,
        Sockets = sockets, SocketSkew = new Cycles(skew),
    };

    private sealed record Rig(Simulator Sim, Hypervisor Hv, Vm Vm, Host[] Hosts, ObservationLog Log);

    private static Rig Build(HypervisorConfig policy, HostConfig[] hosts, string program = "loop: rdtsc\nwork 10000cycles\njmp loop",
        int vcpus = 1, long? tscKhz = null, int[]? pin = null)
    {
        var sim = new Simulator(1);
        var hs = hosts.Select(h => new Host(h, sim)).ToArray();
        var hv = new Hypervisor(new GuestExecutor(sim), policy);
        var log = new ObservationLog();
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = vcpus, TscKhz = tscKhz }, hs[0], Assembler.Assemble(program), log, pin);
        return new Rig(sim, hv, vm, hs, log);
    }

    private static HypervisorConfig P(string name) => HypervisorConfig.Find(name)!;

    // ---- kvm-2011 (Linux 2.6.37/38 arch/x86/kvm/x86.c)

    [Fact]
    public void Kvm2011_publishes_flags_0_without_a_master_clock_in_version_steps_of_two()
    {
        var rig = Build(P("kvm-2011"), [HostOf("h", 2_000)]);
        rig.Vm.Start(Ms(0.1));
        rig.Sim.Run(Ms(0.5));
        rig.Vm.Kvmclock.RequestUpdate(0, Ms(1));
        rig.Sim.Run(Ms(2));
        var pv = rig.Vm.Kvmclock.Published(0);
        Assert.False(rig.Vm.Kvmclock.MasterClock);
        Assert.Equal(0, pv.Flags); // no PVCLOCK_TSC_STABLE_BIT: every kvm-clock read takes the last_value guard
        Assert.Equal(4u, pv.Version); // two publications, += 2 each, never odd
        Assert.Equal(4u, PvclockAbi.ReadVersion(PvclockAbi.Record(rig.Vm.Shared.Pvclock, 0)));
        // Today's KVM on the same stable host: master clock and STABLE.
        var modern = Build(P("kvm-modern"), [HostOf("h", 2_000)]);
        modern.Vm.Start(Ms(0.1));
        modern.Sim.Run(Ms(0.5));
        Assert.Equal(PvclockAbi.TscStableBit, modern.Vm.Kvmclock.Published(0).Flags & PvclockAbi.TscStableBit);
    }

    [Fact]
    public void Kvm2011_max_kernel_ns_guard_keeps_system_time_at_what_the_guest_could_already_see()
    {
        // Published at 0.1 ms: tsc_timestamp 200,000, kernel ns 0.1 ms. The guest TSC is then pushed
        // 2,000,000 cycles ahead (as adjust_tsc_offset does). At 1 ms the guest TSC is 4,000,000:
        // under the old parameters the guest could see 0.1 ms + 3,800,000 / 2 GHz = 2 ms, more than
        // the host's 1 ms, so system_time is 2 ms (kvmclock counts from creation at 0).
        var rig = Build(P("kvm-2011"), [HostOf("h", 2_000)], program: "loop: work 1000cycles\njmp loop");
        rig.Vm.Start(Ms(0.1));
        rig.Sim.Run(Ms(0.5));
        Assert.Equal(200_000UL, rig.Vm.Kvmclock.Published(0).TscTimestamp);
        rig.Vm.Platforms[0].Controls.TscOffset += 2_000_000;
        rig.Vm.Kvmclock.RequestUpdate(0, Ms(1));
        rig.Sim.Run(Ms(1));
        var pv = rig.Vm.Kvmclock.Published(0);
        Assert.Equal(4_000_000UL, pv.TscTimestamp);
        Assert.Equal(2_000_000UL, pv.SystemTime);
        Assert.Equal(1, rig.Vm.Kvmclock.GuardRaises);
        // Modern KVM has no such guard: system_time is the master pair's ns.
        Assert.Equal(0, Build(P("kvm-modern"), [HostOf("h", 2_000)]).Vm.Kvmclock.GuardRaises);
    }

    [Fact]
    public void Kvm2011_writes_3_s_apart_still_match_and_reuse_the_offset_and_5_s_later_do_not()
    {
        // kvm_write_tsc: |data − last written| < 5 s of host cycles and < 5 s since the last
        // unmatched write. vCPU 0 was written 0 at creation (t = 0).
        var rig = Build(P("kvm-2011"), [HostOf("h", 2_000)], vcpus: 2);
        var (v0, v1) = (rig.Vm.Platforms[0], rig.Vm.Platforms[1]);
        rig.Vm.SynchronizeTsc(1, Ms(3_000), 8_000_000_000, userValue: true); // 4 s of cycles ahead of 0: within 5 s
        Assert.Equal(v0.Controls.TscOffset, v1.Controls.TscOffset);           // matched: the VM's last offset
        Assert.Equal(6_000_000_000UL, v1.NativeGuestTsc(Ms(3_000)));          // not the 8,000,000,000 written
        rig.Vm.SynchronizeTsc(1, Ms(6_000), 0, userValue: true);              // 6 s after the unmatched write
        Assert.Equal(0UL, v1.NativeGuestTsc(Ms(6_000)));                      // unmatched: starts from 0
        Assert.Equal(2, rig.Vm.TscGeneration);
        // Today's kvm_synchronize_tsc: 8,000,000,000 is 2 s of cycles from where the first write
        // would be at 3 s (6,000,000,000): outside its ±1 s, unmatched.
        var modern = Build(P("kvm-modern"), [HostOf("h", 2_000)], vcpus: 2);
        modern.Vm.SynchronizeTsc(1, Ms(3_000), 8_000_000_000, userValue: true);
        Assert.Equal(8_000_000_000UL, modern.Vm.Platforms[1].NativeGuestTsc(Ms(3_000)));
    }

    [Theory]
    [InlineData("mov rcx, 0x3b\nrdmsr\nhlt")]
    [InlineData("mov rcx, 0x3b\nmov rdx, 0\nmov rax, 5\nwrmsr\nhlt")]
    public void Kvm2011_does_not_know_ia32_tsc_adjust_and_the_guest_takes_gp(string program)
    {
        // 2.6.38 x86.c has no MSR_IA32_TSC_ADJUST: kvm_{get,set}_msr_common's default returns 1 (#GP).
        var old = Build(P("kvm-2011"), [HostOf("h", 2_000)], program: program);
        old.Vm.Start(SimTime.Zero);
        old.Sim.Run(Ms(1));
        Assert.Equal(GuestFaultKind.GeneralProtection, old.Vm.Vcpus[0].Fault?.Kind);
        Assert.Contains("IA32_TSC_ADJUST", old.Vm.Vcpus[0].Fault!.Message, StringComparison.Ordinal);
        var modern = Build(P("kvm-modern"), [HostOf("h", 2_000)], program: program);
        modern.Vm.Start(SimTime.Zero);
        modern.Sim.Run(Ms(1));
        Assert.Null(modern.Vm.Vcpus[0].Fault);
    }

    [Fact]
    public void Kvm2011_guest_tsc_writes_go_through_kvm_write_tsc_and_a_near_one_is_matched_away()
    {
        // The guest writes 1,000,000 at about 1 µs: within 5 s of the 0 written at creation, less
        // than 5 s later: matched, the VM's offset stays, and the next RDTSC continues the old
        // timeline. Today's KVM moves the offset (adjust_tsc_offset_guest): the write shows.
        const string program = "mov rcx, 0x10\nmov rdx, 0\nmov rax, 1000000\nwrmsr\nrdtsc\nmov r12, rax\nhlt";
        var old = Build(P("kvm-2011"), [HostOf("h", 2_000)], program: program);
        old.Vm.Start(SimTime.Zero);
        old.Sim.Run(Ms(1));
        Assert.InRange(old.Vm.Vcpus[0].Register(12), 1L, 10_000L);
        var modern = Build(P("kvm-modern"), [HostOf("h", 2_000)], program: program);
        modern.Vm.Start(SimTime.Zero);
        modern.Sim.Run(Ms(1));
        Assert.InRange(modern.Vm.Vcpus[0].Register(12), 1_000_000L, 1_010_000L);
    }

    [Fact]
    public void Kvm2011_on_a_stable_host_never_catches_up_nor_updates_the_clock_after_exits_or_moves()
    {
        // tsc_catchup is set only by kvm_arch_vcpu_load on an unstable host: a move between the
        // cores of a synchronized host neither adjusts the offset nor requests a clock update.
        var rig = Build(P("kvm-2011"), [HostOf("h", 2_000)], program: "loop: cpuid\nwork 2000cycles\njmp loop", pin: [0]);
        rig.Vm.Start(SimTime.Zero);
        rig.Hv.ScheduleMigrateVcpu(Ms(0.5), rig.Vm, 0, 1);
        rig.Sim.Run(Ms(2));
        Assert.False(rig.Vm.Trapping);
        Assert.False(rig.Vm.CatchUp);
        Assert.False(rig.Vm.Platforms[0].CatchUpPending);
        Assert.True(rig.Vm.Platforms[0].Exits.Cpuid > 100);
        Assert.Equal(1, rig.Vm.Kvmclock.Updates); // the boot publication only
        Assert.Equal(4_000_000UL, rig.Vm.Platforms[0].NativeGuestTsc(Ms(2)));
        Assert.Equal(2_000_000, rig.Vm.EffectiveTscKhz);
    }

    // ---- kvm-modern and the VMM

    private static Rig Migrate2To1(VmmKind vmm, HostConfig destination, string program = "loop: rdtsc\nwork 10000cycles\njmp loop")
    {
        var rig = Build(P("kvm-modern") with { Vmm = vmm }, [HostOf("a", 2_000), destination], program);
        rig.Vm.Start(SimTime.Zero);
        rig.Hv.ScheduleLiveMigration(Ms(1), rig.Vm, rig.Hosts[1], Duration.FromMicroseconds(100));
        return rig;
    }

    [Fact]
    public void Kvm_modern_direct_2_to_1_GHz_on_a_stable_host_catches_up_once_per_master_clock_update()
    {
        // Saved at 1 ms: guest TSC 2,000,000. Restored at 1.1 ms; the master pair is taken there,
        // so compute_guest_tsc(master ns) = 2,000,000: nothing to push. At 1.6 ms the guest TSC
        // is 2,000,000 + 0.5 ms × 1 GHz = 2,500,000 while 2 GHz would give 3,000,000: lag
        // 500,000 cycles (0.25 ms), although every exit updates the clock (tsc_always_catchup).
        var rig = Migrate2To1(VmmKind.Direct, HostOf("b", 1_000), "loop: cpuid\nwork 10000cycles\njmp loop");
        rig.Sim.Run(Ms(1.6));
        var p = rig.Vm.Platforms[0];
        Assert.True(rig.Vm.CatchUp);
        Assert.True(rig.Vm.Kvmclock.MasterClock);
        Assert.Equal(2_500_000UL, p.NativeGuestTsc(Ms(1.6)));
        // A master clock update at 1.6 ms moves the target once: the TSC jumps to 3,000,000 …
        rig.Vm.Kvmclock.UpdateMasterClock(Ms(1.6));
        rig.Vm.Kvmclock.RequestUpdate(0, Ms(1.6));
        rig.Sim.Run(Ms(1.6));
        Assert.Equal(3_000_000UL, p.NativeGuestTsc(Ms(1.6)));
        // … and runs at the host's 1 GHz again: 3,500,000 at 2.1 ms (lag 500,000 once more).
        rig.Sim.Run(Ms(2.1));
        Assert.Equal(3_500_000UL, p.NativeGuestTsc(Ms(2.1)));
        Assert.Equal(2_000_000, rig.Vm.EffectiveTscKhz);
        Assert.Empty(rig.Vm.Warnings);
    }

    [Fact]
    public void Kvm_modern_direct_2_to_1_GHz_on_an_unstable_host_catches_up_at_every_exit_within_half_a_tick()
    {
        // Destination sockets unsynchronized: no master clock, so every exit's clock update
        // catches up to compute_guest_tsc(now). An exit every 1 ms stands in for a HZ=1000 tick:
        // between exits the TSC falls behind at (2 − 1) GHz, so the lag stays below
        // (1 − 1/2)/1000 s = 0.5 ms = 1,000,000 cycles at 2 GHz.
        var rig = Migrate2To1(VmmKind.Direct, HostOf("b", 1_000, sockets: 2, skew: 1_000), "loop: cpuid\nwork 998000cycles\njmp loop");
        rig.Sim.Run(Ms(1.1));
        Assert.False(rig.Vm.Kvmclock.MasterClock);
        long maxLag = 0;
        for (double t = 1.15; t < 20; t += 0.05)
        {
            rig.Sim.Run(Ms(t));
            long expected = 2_000_000 + (long)Math.Round((t - 1.1) * 2_000_000);
            maxLag = Math.Max(maxLag, expected - (long)rig.Vm.Platforms[0].NativeGuestTsc(Ms(t)));
        }
        Assert.InRange(maxLag, 800_000L, 999_999L);
    }

    [Fact]
    public void Kvm_modern_under_qemu_2_to_1_GHz_runs_the_guest_at_1_GHz_and_says_so()
    {
        var rig = Migrate2To1(VmmKind.Qemu, HostOf("b", 1_000));
        rig.Sim.Run(Ms(2.1));
        Assert.False(rig.Vm.CatchUp);
        Assert.Equal(1_000_000, rig.Vm.VirtualTscKhz);
        Assert.Equal(1_000_000, rig.Vm.EffectiveTscKhz);
        Assert.Equal(3_000_000UL, rig.Vm.Platforms[0].NativeGuestTsc(Ms(2.1))); // 2,000,000 + 1 ms × 1 GHz
        var w = Assert.Single(rig.Vm.Warnings);
        Assert.Equal("qemu-system-x86_64: warning: TSC frequency mismatch between VM (2000000 kHz) and host (1000000 kHz), and TSC scaling unavailable; the guest TSC runs at the destination's 1000000 kHz", w.Message);
    }

    [Fact]
    public void Qemu_refuses_a_vm_with_a_far_tsc_khz_at_the_vms_line_of_the_scenario()
    {
        const string text = """
            name: refused
            duration: 1ms
            hosts:
              - id: h
                cpu: intel-nehalem
                frequency: 2GHz
            hypervisor:
              policy: kvm-modern
            vms:
              - id: vm0
                host: h
                tsc_khz: 2500000
                guest: linux-2.6.18
                workload: |
                  hlt
            """;
        var ex = Assert.Throws<ScenarioException>(() => new ScenarioModel(ScenarioLoader.LoadText(text, "refused.yaml")));
        Assert.True(ex.Refused);
        var d = Assert.Single(ex.Diagnostics);
        Assert.StartsWith("refused.yaml:10:", d.ToString(), StringComparison.Ordinal);
        Assert.EndsWith("kvm_init_vcpu: kvm_arch_init_vcpu failed (0): Operation not supported", d.ToString(), StringComparison.Ordinal);
        // vmm: direct reaches KVM, which catches up.
        var model = new ScenarioModel(ScenarioLoader.LoadText(text.Replace("policy: kvm-modern", "policy: kvm-modern\n  vmm: direct", StringComparison.Ordinal), "direct.yaml"));
        Assert.True(model.Vms[0].Vm.CatchUp);
        Assert.Equal("direct", model.Vms[0].Vm.VmmName);
    }

    // ---- Xen

    [Fact]
    public void Xen_native_never_re_offsets_a_moved_vcpu_so_its_raw_tsc_steps_back_by_the_socket_skew()
    {
        // Socket 1 (cores 2, 3) runs 4,000 cycles ahead. The BSP's offset is taken on core 0 and
        // copied to vCPU 1 on core 2, which therefore reads 4,000 ahead of vCPU 0; moved to core 0
        // it steps back by 4,000 (xen/arch/x86/hvm/hvm.c: no hvm_set_tsc_offset on a pCPU move).
        var rig = Build(P("xen-native"), [HostOf("h", 2_000, sockets: 2, skew: 4_000)], vcpus: 2, pin: [0, 2]);
        rig.Vm.Start(SimTime.Zero);
        rig.Sim.Run(Ms(1));
        var (v0, v1) = (rig.Vm.Platforms[0], rig.Vm.Platforms[1]);
        Assert.Equal(v0.Controls.TscOffset, v1.Controls.TscOffset);
        Assert.Equal(4_000L, unchecked((long)(v1.NativeGuestTsc(Ms(1)) - v0.NativeGuestTsc(Ms(1)))));
        ulong before = v1.NativeGuestTsc(Ms(1));
        rig.Hv.MigrateVcpu(rig.Vm, 1, 0, Ms(1));
        Assert.Equal(-4_000L, unchecked((long)(v1.NativeGuestTsc(Ms(1)) - before)));
        Assert.Empty(rig.Hv.UnstableHosts); // no KVM-style backwards-TSC handling either
        // KVM on the same host resumes the moved vCPU where it was (kvm_arch_vcpu_load on an unstable host).
        var kvm = Build(P("kvm-modern"), [HostOf("h", 2_000, sockets: 2, skew: 4_000)], vcpus: 2, pin: [0, 2]);
        kvm.Vm.Start(SimTime.Zero);
        kvm.Sim.Run(Ms(1));
        ulong kvmBefore = kvm.Vm.Platforms[1].NativeGuestTsc(Ms(1));
        kvm.Hv.MigrateVcpu(kvm.Vm, 1, 0, Ms(1));
        Assert.Equal(kvmBefore, kvm.Vm.Platforms[1].NativeGuestTsc(Ms(1)));
    }

    [Fact]
    public void Xen_default_needs_an_exact_khz_match_without_scaling()
    {
        // tsc_set_info: native iff TSC_RELIABLE and (gtsc_khz == cpu_khz or HVM scaling); no tolerance.
        var near = Build(P("xen-default"), [HostOf("h", 2_000)], tscKhz: 2_000_001);
        Assert.True(near.Vm.Trapping);
        var exact = Build(P("xen-default"), [HostOf("h", 2_000)], tscKhz: 2_000_000);
        Assert.False(exact.Vm.Trapping);
    }

    [Fact]
    public void Xen_always_emulate_costs_18_times_a_native_rdtsc_and_stays_under_0_3_percent_at_10000_reads_per_second()
    {
        // Xen docs/misc/tscmode.txt: "roughly 15-20 times slower than the rdtsc instruction when
        // executed natively ... more than about 10,000 times per second per processor ... <0.3%".
        // Nehalem at 2.93 GHz: native RDTSC 24 cycles, emulated 432 cycles = 147 ns.
        var rig = Build(P("xen-always-emulate"), [HostOf("h", 2_930)], program: "loop: rdtsc\nwork 293000cycles\njmp loop");
        rig.Vm.Start(SimTime.Zero);
        rig.Sim.Run(Ms(100));
        var exits = rig.Vm.Platforms[0].Exits;
        Assert.InRange(exits.Rdtsc, 990, 1_001);
        Assert.Equal(18 * 24 * exits.Rdtsc, exits.Cycles);
        double nsPerRead = 18 * 24 / 2.93;
        Assert.True(nsPerRead <= 300);
        var cpu = rig.Vm.Vcpus[0];
        double overheadPct = 100.0 * cpu.ExitCycles / (cpu.ExitCycles + cpu.GuestCycles);
        Assert.InRange(overheadPct, 0.1, 0.3);
    }

    // ---- Hyper-V re-enlightenment

    private static KernelRig HyperVMigrated(OsProfile profile)
    {
        var rig = new KernelRig(profile, P("hyperv"), [KernelRig.Host("slow", 2_000), KernelRig.Host("fast", 3_000)], clocksource: ClocksourceKind.Tsc);
        rig.Hv.ScheduleLiveMigration(SimTime.FromDuration(Duration.FromMilliseconds(1_000)), rig.Vm, rig.Hosts[1], Duration.FromMilliseconds(100));
        rig.RunUntil(Duration.FromMilliseconds(3_000));
        return rig;
    }

    [Fact]
    public void On_hyperv_plain_linux_never_acknowledges_and_stays_emulated()
    {
        var rig = HyperVMigrated(OsProfiles.LinuxModern);
        Assert.Equal(1, rig.Vm.Notifications); // the re-enlightenment vector was injected
        Assert.Equal(0, rig.Kernel.NotificationsHandled);
        Assert.True(rig.Vm.Trapping);
        Assert.True(rig.Vm.ReenlightenmentPending);
        Assert.Equal(2_000_000, rig.Kernel.TscKhz);
        Assert.False(rig.Vm.GuestToldTrapped); // Hyper-V sets no pvclock "trapped" bit: that is the 2011 proposal's
    }

    [Fact]
    public void On_hyperv_windows_2016_acknowledges_and_emulation_ends_after_its_delay()
    {
        var rig = HyperVMigrated(OsProfiles.Windows2016);
        Assert.Equal(1, rig.Kernel.NotificationsHandled);
        Assert.False(rig.Vm.Trapping);
        var interval = Assert.Single(rig.Vm.TrappedIntervals());
        Assert.Equal(SimTime.FromDuration(Duration.FromMilliseconds(1_100)), interval.From);
        Assert.Equal(SimTime.FromDuration(Duration.FromMilliseconds(1_200)), interval.To);
        Assert.Equal(3_000_000, rig.Kernel.TscKhz);
    }

    [Fact]
    public void Linux_modern_ignores_the_proposals_notification_and_only_the_hypothetical_profile_answers()
    {
        var policy = P("kvm-2011") with { NotifyGuest = true };
        foreach (var (profile, answers) in new[] { (OsProfiles.LinuxModern, false), (OsProfiles.LinuxNotifyAware, true) })
        {
            var rig = new KernelRig(profile, policy, [KernelRig.Host("slow", 2_000), KernelRig.Host("fast", 3_000)], clocksource: ClocksourceKind.Tsc);
            rig.Hv.ScheduleLiveMigration(SimTime.FromDuration(Duration.FromMilliseconds(1_000)), rig.Vm, rig.Hosts[1], Duration.FromMilliseconds(100));
            rig.RunUntil(Duration.FromMilliseconds(2_000));
            Assert.Equal(answers, rig.Kernel.NotificationsHandled > 0);
            Assert.Equal(!answers, rig.Vm.Trapping);
        }
        Assert.Contains("HYPOTHETICAL", OsProfiles.LinuxNotifyAware.Description, StringComparison.Ordinal);
    }
    // ---- summary.json

    [Fact]
    public void Summary_reports_the_vmm_the_final_tsc_rate_and_each_vcpus_pvclock_flags()
    {
        const string text = """
            name: summary
            duration: 20ms
            hosts:
              - id: a
                cpu: intel-nehalem
                frequency: 2GHz
              - id: b
                cpu: intel-nehalem
                frequency: 1GHz
            hypervisor:
              policy: kvm-modern
            vms:
              - id: vm0
                host: a
                guest: linux-modern
                workload: |
                  loop:
                    call clock_gettime
                    work 20000cycles
                    jmp loop
            events:
              - at: 5ms
                live_migrate: { vm: vm0, to: b, downtime: 1ms }
            """;
        var run = ScenarioRun.Execute(new ScenarioModel(ScenarioLoader.LoadText(text, "summary.yaml")));
        var vm = run.Summary["vms"]![0]!;
        Assert.Equal("qemu", (string?)vm["vmm"]);
        Assert.Equal(1_000_000L, (long)vm["tsc_khz"]!); // QEMU: the destination's rate
        Assert.Equal(PvclockAbi.TscStableBit, (int)vm["vcpus"]![0]!["pvclock"]!["flags"]! & PvclockAbi.TscStableBit);
        var old = ScenarioRun.Execute(new ScenarioModel(ScenarioLoader.LoadText(text.Replace("policy: kvm-modern", "policy: kvm-2011", StringComparison.Ordinal), "old.yaml")));
        Assert.Equal(0, (int)old.Summary["vms"]![0]!["vcpus"]![0]!["pvclock"]!["flags"]! & PvclockAbi.TscStableBit);
    }
    // ---- constants checked against the sources (docs/validation.md)

    [Fact]
    public void Constants_are_the_sources_values()
    {
        Assert.Equal(Duration.FromMilliseconds(100), Kvmclock.GlobalUpdateDelay);   // KVMCLOCK_UPDATE_DELAY = msecs_to_jiffies(100)
        Assert.Equal(Duration.FromSeconds(300), Kvmclock.PeriodicSync);             // KVMCLOCK_SYNC_PERIOD = 300 * HZ
        Assert.Equal(5_000_000_000L, KvmWriteTsc.WindowNs);                         // 2.6.38 kvm_write_tsc: 5ULL * NSEC_PER_SEC
        Assert.Equal(250L, P("kvm-modern").TolerancePpm);                           // tsc_tolerance_ppm = 250
        Assert.Equal(0L, P("xen-default").TolerancePpm);                            // tsc_set_info: exact kHz match
        Assert.Equal(62_500_000L, ClocksourceWatchdog.LegacyThresholdNs);          // WATCHDOG_THRESHOLD = NSEC_PER_SEC >> 4
        Assert.Equal(62_000L, ClocksourceWatchdog.MaxSkewNs);                      // WATCHDOG_MAX_SKEW (MAX_SKEW_USEC)
        Assert.Equal(Duration.FromMilliseconds(500), ClocksourceWatchdog.Interval); // WATCHDOG_INTERVAL = HZ >> 1
        Assert.Equal(20, SmpBringUp.WarpTestMilliseconds);                         // loop_timeout: 20 ms without online package mates
        Assert.Equal(2, SmpBringUp.SiblingWarpTestMilliseconds);                   // loop_timeout: 2 ms with one
        Assert.Equal(50_000L, OsProfiles.FreeBsd8.ReadRefsThresholdCycles);         // 2.6.37 tsc.c SMI_TRESHOLD (the Linux-modelled calibration of the other OSes)
        Assert.Equal(0x20000L, OsProfiles.LinuxModern.ReadRefsThresholdCycles);    // 6.18 tsc.c TSC_DEFAULT_THRESHOLD (tsc_khz still 0)
        Assert.Equal(Duration.FromMilliseconds(100), OsProfiles.Windows2016.NotificationDelay); // HZ/10 re-enlightenment work
        // QEMU freq_within_bounds: ±(freq × 250 / 10^6), integer.
        Assert.True(Vm.QemuWithinBounds(2_000_000, 2_000_500));
        Assert.False(Vm.QemuWithinBounds(2_000_000, 2_000_501));
        Assert.True(Vm.QemuWithinBounds(2_000_000, 1_999_500));
        Assert.False(Vm.QemuWithinBounds(2_000_000, 1_999_499));
        Assert.Equal(18, HypervisorConfig.XenEmulationMultiple);                    // within Xen's "15-20 times"
    }
}

public class PlacementTests
{
    [Fact]
    public void Unpinned_vms_spread_over_the_least_loaded_cores_instead_of_stacking_on_core_0()
    {
        var sim = new Simulator(1);
        var host = new Host(new HostConfig { Id = "h", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 4 }, sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find("kvm-modern")!);
        var program = Assembler.Assemble("loop: jmp loop");
        var a = hv.CreateVm(new VmConfig { Id = "a", Vcpus = 2 }, host, program);
        var b = hv.CreateVm(new VmConfig { Id = "b", Vcpus = 2 }, host, program);
        var c = hv.CreateVm(new VmConfig { Id = "c", Vcpus = 1 }, host, program, pin: [0]);
        var d = hv.CreateVm(new VmConfig { Id = "d", Vcpus = 3 }, host, program);
        Assert.Equal([0, 1], a.Vcpus.Select(v => v.Core.Index));
        Assert.Equal([2, 3], b.Vcpus.Select(v => v.Core.Index));
        Assert.Equal([0], c.Vcpus.Select(v => v.Core.Index));
        // loads now 2,1,1,1: cores 1, 2, 3 (then all are at 2)
        Assert.Equal([1, 2, 3], d.Vcpus.Select(v => v.Core.Index));
        Assert.False(d.Pinned);
    }
}
