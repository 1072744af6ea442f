using TscSim.Core.Engine;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Isa;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using TscSim.Tests.Isa;

namespace TscSim.Tests.Virtualization;

public class VcpuMoveTests
{
    private static SimTime Ms(double ms) => SimTime.FromPicoseconds((long)(ms * 1_000_000_000));

    private static (Simulator Sim, Hypervisor Hv, Vm Vm, ObservationLog Log) Build(Func<HostConfig, HostConfig> host, int[] pin,
        string policy = "kvm-modern", long? tscKhz = null, string program = "loop: rdtsc\nwork 10000cycles\njmp loop")
    {
        var sim = new Simulator(1);
        var h = new Host(host(new HostConfig { Id = "h", Cpu = CpuPresets.IntelNehalem, Frequency = Frequency.FromMegahertz(2_000), CoresPerSocket = 2 }), sim);
        var hv = new Hypervisor(new GuestExecutor(sim), HypervisorConfig.Find(policy)! with { Vmm = VmmKind.Direct });
        var log = new ObservationLog();
        var vm = hv.CreateVm(new VmConfig { Id = "vm0", Vcpus = pin.Length, TscKhz = tscKhz }, h, Assembler.Assemble(program), log, pin);
        return (sim, hv, vm, log);
    }

    [Fact]
    public void A_move_on_a_synchronized_host_keeps_the_master_clock_and_needs_no_clock_update()
    {
        var (sim, hv, vm, log) = Build(c => c, [0]);
        vm.Start(SimTime.Zero);
        sim.Run(Ms(0.5));
        int updates = vm.Kvmclock.Updates;
        hv.ScheduleMigrateVcpu(Ms(1), vm, 0, 1);
        sim.Run(Ms(2));
        Assert.Same(vm.Host.Cores[1], vm.Vcpus[0].Core);
        Assert.True(vm.Kvmclock.MasterClock);
        Assert.Equal(updates, vm.Kvmclock.Updates);
        Assert.Empty(hv.UnstableHosts);
        var values = log.TscReads.Select(r => r.Value).ToList();
        Assert.All(values.Zip(values.Skip(1)), p => Assert.True(p.Second > p.First));
    }

    [Fact]
    public void Moving_to_a_socket_that_is_behind_marks_the_host_unstable_and_the_guest_tsc_resumes_where_it_was()
    {
        // Socket 1 starts 1,000,000 cycles ahead. The vCPU runs on core 2 (socket 1) with guest TSC 0
        // at creation; at 1 ms (guest TSC 2,000,000) it moves to core 0, whose TSC reads 2,000,000
        // where core 2's read 3,000,000: a backwards host TSC of -1,000,000 cycles.
        var (sim, hv, vm, log) = Build(c => c with { Sockets = 2, SocketSkew = new Cycles(1_000_000) }, [2]);
        vm.Start(SimTime.Zero);
        hv.ScheduleMigrateVcpu(Ms(1), vm, 0, 0);
        sim.Run(Ms(3));
        Assert.Contains("backwards TSC (-1000000 cycles", hv.UnstableHosts[vm.Host], StringComparison.Ordinal);
        Assert.True(vm.Kvmclock.BackwardsTscObserved);
        Assert.True(vm.Platforms[0].CatchUpPending);
        // The guest TSC kept its pace across the move: every step is one loop iteration (10,000 +
        // rdtsc 24 + jmp 1 cycles), never a jump back by the skew.
        var values = log.TscReads.Select(r => (long)r.Value).ToList();
        Assert.All(values.Zip(values.Skip(1)), p => Assert.InRange(p.Second - p.First, 10_025L, 10_025L));
    }

    [Fact]
    public void Without_the_unstable_handling_the_same_move_would_jump_back_by_the_skew()
    {
        // The offset is shared from creation (computed on core 2); read natively on core 0 the
        // guest TSC would be 1,000,000 lower. Checked here against the arithmetic of the model.
        var (sim, _, vm, _) = Build(c => c with { Sockets = 2, SocketSkew = new Cycles(1_000_000) }, [2]);
        ulong onCore2 = vm.Backend.GuestTsc(vm.Host.Cores[2].ReadTsc(Ms(1)).Raw, in vm.Platforms[0].Controls);
        ulong onCore0 = vm.Backend.GuestTsc(vm.Host.Cores[0].ReadTsc(Ms(1)).Raw, in vm.Platforms[0].Controls);
        Assert.Equal(1_000_000L, (long)(onCore2 - onCore0));
        _ = sim;
    }

    [Fact]
    public void Catch_up_moves_the_offset_only_forward_and_reaches_the_vm_rate()
    {
        // kvm-modern, VM at 2.5 GHz on an unsynchronized 2 GHz host (master clock off) without
        // scaling: catch-up at the update's own ns. Clock updates at 1 ms and 2 ms push the guest
        // TSC to 2,500,000 and 5,000,000 (nsec_to_cycles for 2.5 GHz: shift 2, mul 0xA000_0000 =
        // 0.625, exact for these values).
        var (sim, _, vm, _) = Build(c => c with { Sockets = 2, SocketSkew = new Cycles(1_000) }, [0], tscKhz: 2_500_000, program: "loop: work 1000cycles\njmp loop");
        Assert.True(vm.CatchUp);
        vm.Start(SimTime.Zero);
        var offsets = new List<long> { vm.Platforms[0].Controls.TscOffset };
        foreach (double ms in new[] { 1.0, 2.0 })
        {
            vm.Kvmclock.RequestUpdate(0, Ms(ms));
            sim.Run(Ms(ms));
            offsets.Add(vm.Platforms[0].Controls.TscOffset);
        }
        Assert.Equal(5_000_000UL, vm.Kvmclock.Published(0).TscTimestamp);
        Assert.Equal([0L, 500_000L, 1_000_000L], offsets);
        Assert.Equal(5_000_000UL, vm.Platforms[0].NativeGuestTsc(Ms(2)));
        Assert.False(vm.Kvmclock.MasterClock);
    }

    [Fact]
    public void With_the_master_clock_on_catch_up_aims_at_the_frozen_pair_and_the_guest_keeps_the_host_rate()
    {
        // Same VM on a synchronized host: the master pair was taken at start (host ns 0), so
        // compute_guest_tsc(master_kernel_ns) = 0 and the updates at 1 ms and 2 ms push nothing
        // (x86.c kvm_guest_time_update: host_tsc and kernel_ns are the master pair's).
        var (sim, _, vm, _) = Build(c => c, [0], tscKhz: 2_500_000, program: "loop: work 1000cycles\njmp loop");
        Assert.True(vm.CatchUp);
        vm.Start(SimTime.Zero);
        foreach (double ms in new[] { 1.0, 2.0 })
        {
            vm.Kvmclock.RequestUpdate(0, Ms(ms));
            sim.Run(Ms(ms));
        }
        Assert.True(vm.Kvmclock.MasterClock);
        Assert.Equal(0L, vm.Platforms[0].Controls.TscOffset);
        Assert.Equal(4_000_000UL, vm.Platforms[0].NativeGuestTsc(Ms(2)));
        // A new master pair (KVM_REQ_MASTERCLOCK_UPDATE) at 3 ms moves the target once: to 7,500,000.
        vm.Kvmclock.UpdateMasterClock(Ms(3));
        vm.Kvmclock.RequestUpdate(0, Ms(3));
        sim.Run(Ms(3));
        Assert.Equal(7_500_000UL, vm.Platforms[0].NativeGuestTsc(Ms(3)));
    }

    [Fact]
    public void Catch_up_never_pulls_a_guest_tsc_that_is_ahead_back()
    {
        // After the unstable-host move the vCPU has catch-up pending while its TSC is ahead of
        // the VM-rate TSC (socket 1 ran it 1,000,000 ahead from the start? no: it is exact);
        // force it ahead with a guest write and check updates leave the offset alone.
        const string program = "mov rcx, 0x10\nmov rdx, 0\nmov rax, 90000000\nwrmsr\nloop: work 1000cycles\njmp loop";
        var (sim, _, vm, _) = Build(c => c, [0], program: program);
        vm.Platforms[0].CatchUpPending = true;
        vm.Start(SimTime.Zero);
        sim.Run(Ms(0.5));
        long offset = vm.Platforms[0].Controls.TscOffset;
        vm.Kvmclock.RequestUpdate(0, Ms(1));
        sim.Run(Ms(1.5));
        Assert.Equal(offset, vm.Platforms[0].Controls.TscOffset);
    }

    [Fact]
    public void Always_catchup_updates_the_clock_after_every_exit()
    {
        var (sim, _, vm, _) = Build(c => c, [0], tscKhz: 2_500_000, program: "loop: cpuid\nwork 2000cycles\njmp loop");
        vm.Start(SimTime.Zero);
        sim.Run(Ms(0.05));
        int before = vm.Kvmclock.Updates;
        long exits = vm.Platforms[0].Exits.Cpuid;
        sim.Run(Ms(0.5));
        Assert.True(vm.Platforms[0].Exits.Cpuid - exits > 100);
        Assert.Equal(vm.Platforms[0].Exits.Cpuid - exits, vm.Kvmclock.Updates - before, 1.0);
        // With the master clock on (synchronized host) the catch-up target is the frozen master
        // pair's, so despite an update after every exit the guest TSC keeps the host's 2 GHz
        // (measured on real KVM in issue 17): 1,000,000 at 0.5 ms, not 1,250,000.
        Assert.True(vm.Kvmclock.MasterClock);
        Assert.Equal(1_000_000UL, vm.Platforms[0].NativeGuestTsc(Ms(0.5)));
    }

    [Fact]
    public void Guest_tsc_adjust_writes_move_the_tsc_and_tsc_writes_move_tsc_adjust()
    {
        const string program = """
                mov rcx, 0x3b
                mov rdx, 0
                mov rax, 1000000
                wrmsr
                rdtsc
                mov r12, rax
                mov rcx, 0x10
                mov rdx, 0
                mov rax, 50000000
                wrmsr
                mov rcx, 0x3b
                rdmsr
                mov r13, rax
                hlt
            """;
        var (sim, _, vm, log) = Build(c => c, [0], program: program);
        vm.Start(SimTime.Zero);
        sim.Run(Ms(1));
        var v = vm.Vcpus[0];
        Assert.Null(v.Fault);
        // The first rdtsc sees the TSC moved by +1,000,000: issued after 3 movs and the WRMSR exit
        // (1,000 + 200 cycles): 1,203 cycles = 1,203 ticks at 2 GHz, plus the adjust.
        Assert.Equal(1_001_203L, v.Register(12));
        // Writing TSC = 50,000,000 moves TSC_ADJUST by (50,000,000 − the TSC at that write's
        // handler). That WRMSR issues at 1,203 + rdtsc 24 + 4 movs = 1,231 cycles; its handler
        // runs 500 cycles later, when the TSC reads 1,000,000 + 1,731: TSC_ADJUST = 1,000,000 +
        // 50,000,000 − 1,001,731 = 49,998,269.
        Assert.Equal(49_998_269L, v.Register(13));
        Assert.Equal(49_998_269L, vm.Platforms[0].TscAdjust);
        Assert.Equal(2, vm.Kvmclock.Updates); // one at start, one after the TSC_ADJUST write
    }

    [Fact]
    public void Without_a_master_clock_a_move_requests_a_global_update_rate_limited_to_100ms()
    {
        var (sim, hv, vm, _) = Build(c => c with { Sockets = 2, SocketSkew = new Cycles(-1_000_000), Uptime = Duration.FromMilliseconds(1) }, [0, 1],
            program: "loop: work 1000cycles\njmp loop");
        vm.Start(SimTime.Zero);
        sim.Run(Ms(0.1));
        int before = vm.Kvmclock.Updates;
        hv.ScheduleMigrateVcpu(Ms(1), vm, 0, 1);
        hv.ScheduleMigrateVcpu(Ms(2), vm, 0, 0);
        sim.Run(Ms(50));
        Assert.Equal(before + 2, vm.Kvmclock.Updates); // the moving vCPU, twice; the global one is still pending
        sim.Run(Ms(150));
        Assert.Equal(before + 4, vm.Kvmclock.Updates); // one global update (both vCPUs) at 101 ms, not two
    }
}
