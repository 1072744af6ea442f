using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

public class RecorderTests
{
    /// <summary>
    /// Four reads worked by hand:
    /// true 0, 1000, 2000, 3000; clock 10, 1020, 1015, 3030; skew 10, 20, -985, 30;
    /// cycles 100, 200, 300, 1000; exits 0, 1, 0, 2.
    /// </summary>
    internal static VcpuRecorder HandWorked()
    {
        var r = new VcpuRecorder(1);
        r.OnClockRead(0, 10, 100, 0);
        r.OnClockRead(1000, 1020, 200, 1);
        r.OnClockRead(2000, 1015, 300, 0);
        r.OnClockRead(3000, 3030, 1000, 2);
        r.OnTscRead(0, 100, false, 30);
        r.OnTscRead(10, 200, true, 1500);
        r.OnTscRead(20, 150, false, 30);
        r.OnTscRead(30, 150, false, 30);
        return r;
    }

    [Fact]
    public void Vcpu_recorder_matches_values_worked_by_hand()
    {
        VcpuRecorder r = HandWorked();
        Assert.Equal(1, r.Id);
        Assert.Equal(4, r.Reads);

        StatsSummary skew = r.SkewNs;
        Assert.Equal(-985L, skew.Min);
        Assert.Equal(30L, skew.Max);
        Assert.Equal(-231.25, skew.Mean);       // -925 / 4
        Assert.Equal(985UL, skew.MaxAbs);
        Assert.Equal(30L, skew.Final);
        Assert.Equal(15.0, skew.P50);           // sorted -985 10 20 30, rank 1.5
        Assert.Equal(29.7, skew.P99!.Value, 9); // rank 2.97: 20 + 0.97 * 10

        // Σx 6000, Σy -925, Σx² 14e6, Σxy -1.86e6, n 4:
        // (4 * -1.86e6 - 6000 * -925) / (4 * 14e6 - 6000²) = -1.89e6 / 20e6 = -0.0945.
        Assert.Equal(-94_500, r.DriftPpm!.Value, 6);

        Assert.Equal(1, r.Violations);          // 1015 after 1020
        Assert.Equal(5UL, r.WorstBackstepNs);
        Assert.Equal(0, r.Stalls);

        StatsSummary cycles = r.ReadCycles;
        Assert.Equal(400.0, cycles.Mean);
        Assert.Equal(250.0, cycles.P50);
        Assert.Equal(979.0, cycles.P99!.Value, 9); // 300 + 0.97 * 700
        Assert.Equal(3, r.ClockReadExits);
        Assert.Equal(2, r.ExitedClockReads);

        Assert.Equal(4, r.TscReads);
        Assert.Equal(1, r.TscExitedReads);
        Assert.Equal(1, r.TscViolations);       // 150 after 200
        Assert.Equal(50UL, r.TscWorstBackstepCycles);
        Assert.Equal(1, r.TscStalls);
        Assert.Equal(1590, r.TscCycles);
    }

    [Fact]
    public void Vcpu_recorder_reports_a_backward_read_through_its_result()
    {
        var r = new VcpuRecorder(0);
        Assert.False(r.OnClockRead(100, 100, 1, 0));
        Assert.True(r.OnClockRead(200, 99, 1, 0));
        Assert.False(r.OnTscRead(0, 10, false, 1));
        Assert.True(r.OnTscRead(0, 9, false, 1));
    }

    [Fact]
    public void Reads_out_of_true_time_order_are_rejected()
    {
        var r = new VcpuRecorder(0);
        r.OnClockRead(100, 100, 1, 0);
        r.OnClockRead(100, 101, 1, 0); // the same instant is allowed
        Assert.Throws<InvalidOperationException>(() => r.OnClockRead(99, 102, 1, 0));
        var vm = new VmRecorder("vm0", 2);
        vm.OnTscRead(0, 50, 1, false, 1);
        Assert.Throws<InvalidOperationException>(() => vm.OnTscRead(1, 49, 2, false, 1));
    }

    [Fact]
    public void Same_instant_reads_on_two_vcpus_are_compared_in_arrival_order()
    {
        // vCPU 0 reads 1000 and vCPU 1 reads 990 at the same true instant.
        var behind = new VmRecorder("vm0", 2);
        Assert.False(behind.OnClockRead(0, 1000, 1000, 50, 0));
        Assert.True(behind.OnClockRead(1, 1000, 990, 50, 0));
        Assert.Equal(1, behind.CrossViolations);
        Assert.Equal(10UL, behind.CrossWorstBackstepNs);
        Assert.Equal(0, behind.Vcpus[0].Violations); // each vCPU alone is monotonic
        Assert.Equal(0, behind.Vcpus[1].Violations);
        Assert.Equal(10UL, behind.CrossMaxSkewNs);

        // The same two reads arriving the other way round go forwards.
        var ahead = new VmRecorder("vm0", 2);
        ahead.OnClockRead(1, 1000, 990, 50, 0);
        ahead.OnClockRead(0, 1000, 1000, 50, 0);
        Assert.Equal(0, ahead.CrossViolations);
        Assert.Equal(0UL, ahead.CrossWorstBackstepNs);
        Assert.Equal(10UL, ahead.CrossMaxSkewNs); // skew does not depend on order
    }

    [Fact]
    public void Vm_recorder_forwards_reads_and_checks_across_vcpus()
    {
        var vm = new VmRecorder("vm1", 3);
        Assert.Equal("vm1", vm.Id);
        Assert.Equal(3, vm.Vcpus.Count);
        Assert.Equal(new[] { 0, 1, 2 }, vm.Vcpus.Select(v => v.Id));

        vm.OnClockRead(0, 100, 105, 10, 0);  // skew +5: no other vCPU yet
        vm.OnClockRead(1, 200, 197, 10, 0);  // skew -3: vCPU 1's first read, nothing to interpolate between
        Assert.Null(vm.CrossMaxSkewNs);
        vm.OnClockRead(2, 300, 300, 10, 0);  // skew 0
        // Skew -10; vCPU 0 between 100 (+5) and 400 (-10) is 0 at 200 and -5 at 300: |-3 - 0| = 3, |0 - (-5)| = 5.
        vm.OnClockRead(0, 400, 390, 10, 1);
        Assert.Equal(5UL, vm.CrossMaxSkewNs);
        Assert.Equal(0, vm.CrossViolations);
        vm.OnClockRead(1, 500, 380, 10, 0);  // 380 < 390: back 10 across, 380 > 197 on vCPU 1
        vm.OnClockRead(2, 600, 385, 10, 0);  // 385 > 380, but < 390, which returned before it began: back 5

        Assert.Equal(2, vm.Vcpus[0].Reads);
        Assert.Equal(2, vm.Vcpus[1].Reads);
        Assert.Equal(1, vm.Vcpus[0].ClockReadExits);
        Assert.Equal(2, vm.CrossViolations);
        Assert.Equal(10UL, vm.CrossWorstBackstepNs);
        // vCPU 1 between 200 (-3) and 500 (-120) is -42 at 300 and -81 at 400: |0 + 42| = 42, |-10 + 81| = 71.
        // vCPU 2 between 300 (0) and 600 (-215) is -71.67 at 400 and -143.33 at 500: 61.67 -> 62, 23.33 -> 23.
        Assert.Equal(71UL, vm.CrossMaxSkewNs);
        Assert.Equal(0, vm.Vcpus.Sum(v => v.Violations));
    }

    [Fact]
    public void Overlapping_clock_reads_are_not_ordered_across_vcpus()
    {
        var vm = new VmRecorder("vm0", 2);
        // vCPU 0 reads during [100, 200] and gets 150; vCPU 1 reads during [120, 210] and gets 140:
        // neither began after the other returned, so no order is violated.
        Assert.False(vm.OnClockRead(0, 100, 200, 150, 10, 0));
        Assert.False(vm.OnClockRead(1, 120, 210, 140, 10, 0));
        Assert.Equal(0, vm.CrossViolations);
        // vCPU 0 then reads during [230, 240] and gets 145: it began after both returned, below 150.
        Assert.True(vm.OnClockRead(0, 230, 240, 145, 10, 0));
        Assert.Equal(1, vm.CrossViolations);
        Assert.Equal(5UL, vm.CrossWorstBackstepNs);
        // A read equal to the largest settled value is a stall, not a violation.
        Assert.False(vm.OnClockRead(1, 250, 260, 150, 10, 0));
        Assert.Equal(1, vm.CrossStalls);
    }

    [Fact]
    public void Vm_recorder_counts_tsc_violations_across_vcpus()
    {
        var vm = new VmRecorder("vm0", 2);
        vm.OnTscRead(0, 10, 500, false, 20);
        Assert.True(vm.OnTscRead(1, 10, 400, true, 1500));
        vm.OnTscRead(1, 20, 600, true, 1500);
        vm.OnTscRead(0, 30, 600, false, 20);
        Assert.Equal(1, vm.CrossTscViolations);
        Assert.Equal(100UL, vm.CrossTscWorstBackstepCycles);
        Assert.Equal(0, vm.Vcpus[0].TscViolations);
        Assert.Equal(0, vm.Vcpus[1].TscViolations);
        Assert.Equal(2, vm.Vcpus[1].TscExitedReads);
        Assert.Throws<ArgumentOutOfRangeException>(() => vm.OnTscRead(2, 40, 700, false, 20));
        Assert.Throws<ArgumentOutOfRangeException>(() => new VmRecorder("vm0", 0));
    }
}
