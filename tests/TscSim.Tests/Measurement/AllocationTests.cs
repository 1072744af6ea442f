using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

/// <summary>The per-read paths run millions of times per run: in steady state they must not allocate.</summary>
public class AllocationTests
{
    private const int Calls = 100_000;

    private static long AllocatedBy(Action<long> call)
    {
        for (long i = 0; i < Calls; i++)
        {
            call(i); // warm-up: JIT tiers, first-use initialisation
        }
        long before = GC.GetAllocatedBytesForCurrentThread();
        for (long i = Calls; i < 2 * Calls; i++)
        {
            call(i);
        }
        return GC.GetAllocatedBytesForCurrentThread() - before;
    }

    [Fact]
    public void Vcpu_clock_read_does_not_allocate()
    {
        var r = new VcpuRecorder(0);
        Assert.Equal(0, AllocatedBy(i => r.OnClockRead(i * 1000, (i * 1000) + (i % 13) - 6, 200 + (i % 50), (int)(i % 2))));
        Assert.Equal(2 * Calls, r.Reads);
    }

    [Fact]
    public void Vcpu_tsc_read_does_not_allocate()
    {
        var r = new VcpuRecorder(0);
        Assert.Equal(0, AllocatedBy(i => r.OnTscRead(i, (ulong)(i * 3) - (ulong)(i % 5), i % 2 == 0, 30)));
    }

    [Fact]
    public void Vm_reads_do_not_allocate()
    {
        var vm = new VmRecorder("vm0", 64);
        Assert.Equal(0, AllocatedBy(i =>
        {
            vm.OnClockRead((int)(i % 64), i * 100, (i * 100) + (i % 64), 300, 0);
            vm.OnTscRead((int)(i % 64), i * 100, (ulong)i * 250, false, 30);
        }));
        Assert.True(vm.CrossMaxSkewNs > 0);
    }

    [Fact]
    public void Read_series_add_does_not_allocate_even_when_compacting()
    {
        var s = new ReadSeries(1000);
        int vm = s.RegisterVm("vm0");
        int host = s.RegisterHost("h");
        long strideBefore = 0;
        Assert.Equal(0, AllocatedBy(i =>
        {
            if (i == Calls)
            {
                strideBefore = s.Stride;
            }
            s.Add(i * 10, vm, 0, 0, host, i * 10, false, pin: i % 9999 == 5);
        }));
        Assert.True(s.Stride > strideBefore); // compactions happened inside the measured window
    }
}
