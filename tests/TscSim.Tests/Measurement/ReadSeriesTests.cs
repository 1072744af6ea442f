using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

public class ReadSeriesTests
{
    /// <summary>n reads, one per microsecond, alternating over two vCPUs, skew i mod 7.</summary>
    private static ReadSeries Fill(int capacity, long n, Func<long, bool>? pin = null)
    {
        var s = new ReadSeries(capacity);
        int vm = s.RegisterVm("vm0");
        int host = s.RegisterHost("fast");
        for (long i = 0; i < n; i++)
        {
            long t = i * 1000;
            s.Add(t, vm, (int)(i % 2), (int)(i % 2) + 2, host, t + (i % 7), exited: i % 3 == 0, pin: pin?.Invoke(i) ?? false);
        }
        return s;
    }

    [Fact]
    public void A_short_run_keeps_every_read_and_writes_exact_csv()
    {
        var s = new ReadSeries(8);
        int vm = s.RegisterVm("vm0");
        int host = s.RegisterHost("slow");
        Assert.Equal(vm, s.RegisterVm("vm0")); // registering again gives the same id
        s.Add(0, vm, 0, 0, host, 5, exited: false);
        s.Add(1500, vm, 1, 3, host, 1490, exited: true, cycles: 2_850);
        s.Add(2000, vm, 0, 0, host, 2000, exited: false);
        var csv = new StringWriter();
        s.WriteCsv(csv);
        Assert.Equal(
            "true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles\n" +
            "0,vm0,0,0,slow,5,5,0,0\n" +
            "1500,vm0,1,3,slow,1490,-10,1,2850\n" +
            "2000,vm0,0,0,slow,2000,0,0,0\n",
            csv.ToString());
        Assert.Equal(3, s.Count);
        Assert.Equal(1, s.Stride);
    }

    [Fact]
    public void Names_with_commas_or_quotes_are_quoted()
    {
        var s = new ReadSeries(8);
        s.Add(7, s.RegisterVm("a,b"), 0, 1, s.RegisterHost("h\"1"), 9, exited: false);
        var csv = new StringWriter();
        s.WriteCsv(csv, header: false);
        Assert.Equal("7,\"a,b\",0,1,\"h\"\"1\",9,2,0,0\n", csv.ToString());
    }

    [Fact]
    public void A_long_run_stays_within_capacity_and_keeps_first_and_last()
    {
        const int capacity = 100;
        const long n = 1_000_003;
        ReadSeries s = Fill(capacity, n);
        IReadOnlyList<ReadRow> rows = s.GetRows();
        Assert.Equal(n, s.Reads);
        Assert.Equal(rows.Count, s.Count);
        Assert.InRange(rows.Count, capacity / 2, capacity);
        Assert.Equal(0, rows[0].TrueNs);
        Assert.Equal((n - 1) * 1000, rows[^1].TrueNs);
        // Every row but the last is, for its vCPU (reads alternate between vCPU 0 and 1), a read whose
        // number among that vCPU's reads is a multiple of the stride, from 0 on, none missing.
        Assert.True(long.IsPow2(s.Stride));
        foreach (int vcpu in new[] { 0, 1 })
        {
            var mine = rows.Take(rows.Count - 1).Where(x => x.Vcpu == vcpu).ToList();
            Assert.NotEmpty(mine);
            for (int i = 0; i < mine.Count; i++)
            {
                long number = mine[i].TrueNs / 1000;        // global read number
                Assert.Equal(vcpu, number % 2);
                Assert.Equal(i * s.Stride, number / 2);     // the vCPU's own read number
            }
        }
        // The row data survive compaction intact.
        ReadRow r = rows[5];
        long read = r.TrueNs / 1000;
        Assert.Equal(new ReadRow(r.TrueNs, "vm0", (int)(read % 2), (int)(read % 2) + 2, "fast", r.TrueNs + (read % 7), read % 7, read % 3 == 0), r);
    }

    [Fact]
    public void Capacity_is_never_exceeded_at_any_point()
    {
        var s = new ReadSeries(8);
        int vm = s.RegisterVm("vm0");
        int host = s.RegisterHost("h");
        for (long i = 0; i < 5000; i++)
        {
            s.Add(i, vm, 0, 0, host, i, exited: false, pin: i % 97 == 1);
            Assert.InRange(s.Count, 1, 8);
        }
    }

    [Fact]
    public void Same_reads_give_the_same_csv()
    {
        static string Csv(ReadSeries s)
        {
            var w = new StringWriter();
            s.WriteCsv(w);
            return w.ToString();
        }
        string a = Csv(Fill(64, 100_000, i => i % 1001 == 17));
        string b = Csv(Fill(64, 100_000, i => i % 1001 == 17));
        Assert.Equal(a, b);
        Assert.NotEqual(a, Csv(Fill(64, 100_001, i => i % 1001 == 17))); // the last row differs
    }

    [Fact]
    public void Pinned_reads_survive_decimation_up_to_a_quarter_of_the_capacity()
    {
        const int capacity = 100;
        // Pin every read numbered 1000k + 1: odd numbers, never kept by the stride alone.
        ReadSeries s = Fill(capacity, 200_000, i => i % 1000 == 1);
        var kept = s.GetRows().Select(r => r.TrueNs / 1000).ToHashSet();
        for (long k = 0; k < capacity / 4; k++)
        {
            Assert.Contains((1000 * k) + 1, kept);
        }
        Assert.DoesNotContain((1000 * (capacity / 4)) + 1, kept); // the 26th pin is over budget
        Assert.InRange(s.Count, capacity / 2, capacity);
    }

    [Fact]
    public void Unregistered_ids_and_tiny_capacities_are_rejected()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new ReadSeries(ReadSeries.MinCapacity - 1));
        var s = new ReadSeries(16);
        int vm = s.RegisterVm("vm0");
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Add(0, vm, 0, 0, 0, 0, false));
        Assert.Throws<ArgumentOutOfRangeException>(() => s.Add(0, vm + 1, 0, 0, s.RegisterHost("h"), 0, false));
        Assert.Equal(0, s.Count);
        var empty = new StringWriter();
        s.WriteCsv(empty);
        Assert.Equal(ReadSeries.Header + "\n", empty.ToString());
    }
}

public class ReadSeriesInterleavingTests
{
    [Fact]
    public void Two_vcpus_reading_in_turn_keep_rows_of_both()
    {
        // A global read number would alias: with the stride at 2 or more, one vCPU's reads (all odd)
        // would vanish. Numbered per vCPU, both keep every stride-th read of their own.
        var s = new ReadSeries(100);
        int vm = s.RegisterVm("vm0");
        int host = s.RegisterHost("h");
        for (int i = 0; i < 100_000; i++)
        {
            s.Add(i * 10L, vm, i % 2, i % 2, host, i * 10L, exited: false);
        }
        var rows = s.GetRows();
        int v0 = rows.Count(r => r.Vcpu == 0), v1 = rows.Count(r => r.Vcpu == 1);
        Assert.True(v0 >= 40 && v1 >= 40, $"vcpu0 {v0} rows, vcpu1 {v1} rows");
        Assert.True(rows.Count <= 100);
    }

    [Fact]
    public void More_vcpus_than_rows_does_not_hang()
    {
        var s = new ReadSeries(8);
        int vm = s.RegisterVm("vm0");
        int host = s.RegisterHost("h");
        for (int i = 0; i < 1_000; i++)
        {
            s.Add(i, vm, i % 20, 0, host, i, exited: false);
        }
        Assert.True(s.GetRows().Count <= 8);
    }
}
