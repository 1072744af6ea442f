using System.Text;
using System.Text.Json;
using TscSim.Core.Measurement;

namespace TscSim.Tests.Measurement;

public class SummaryJsonTests
{
    private static JsonElement Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            body(w);
            w.WriteEndObject();
        }
        return JsonDocument.Parse(buffer.ToArray()).RootElement.Clone();
    }

    private static string[] Keys(JsonElement e) => e.EnumerateObject().Select(p => p.Name).ToArray();

    [Fact]
    public void Vcpu_section_has_the_contract_field_names_and_the_hand_worked_values()
    {
        JsonElement o = Write(w => SummaryJson.WriteVcpuMeasurements(w, RecorderTests.HandWorked()));
        Assert.Equal(
            ["id", "reads", "skew_ns", "drift_ppm", "steps", "largest_step_ns", "violations", "worst_backstep_ns", "wild_reads", "read_cycles",
             "tsc_reads", "tsc_violations", "tsc_worst_backstep_cycles"],
            Keys(o));
        Assert.Equal(["min", "max", "mean", "p50", "p99", "max_abs", "final"], Keys(o.GetProperty("skew_ns")));
        Assert.Equal(["mean", "p50", "p99"], Keys(o.GetProperty("read_cycles")));

        Assert.Equal(1, o.GetProperty("id").GetInt32());
        Assert.Equal(4, o.GetProperty("reads").GetInt64());
        JsonElement skew = o.GetProperty("skew_ns");
        Assert.Equal("-985", skew.GetProperty("min").GetRawText());
        Assert.Equal("30", skew.GetProperty("max").GetRawText());
        Assert.Equal("-231.25", skew.GetProperty("mean").GetRawText());
        Assert.Equal("15", skew.GetProperty("p50").GetRawText());
        Assert.Equal("29.7", skew.GetProperty("p99").GetRawText());
        Assert.Equal("985", skew.GetProperty("max_abs").GetRawText());
        Assert.Equal("30", skew.GetProperty("final").GetRawText());
        Assert.Equal("-94500", o.GetProperty("drift_ppm").GetRawText());
        Assert.Equal(0, o.GetProperty("steps").GetInt64());          // no change of skew above 1 ms
        Assert.Equal(0, o.GetProperty("largest_step_ns").GetInt64());
        Assert.Equal(1, o.GetProperty("violations").GetInt64());
        Assert.Equal(5, o.GetProperty("worst_backstep_ns").GetInt64());
        Assert.Equal(0, o.GetProperty("wild_reads").GetInt64());
        JsonElement cycles = o.GetProperty("read_cycles");
        Assert.Equal("400", cycles.GetProperty("mean").GetRawText());
        Assert.Equal("250", cycles.GetProperty("p50").GetRawText());
        Assert.Equal("979", cycles.GetProperty("p99").GetRawText());
        Assert.Equal(4, o.GetProperty("tsc_reads").GetInt64());
        Assert.Equal(1, o.GetProperty("tsc_violations").GetInt64());
        Assert.Equal(50, o.GetProperty("tsc_worst_backstep_cycles").GetInt64());
    }

    [Fact]
    public void Steps_and_the_largest_step_are_written_per_vcpu()
    {
        var r = new VcpuRecorder(0);
        r.OnClockRead(0, 0, 10, 0);
        r.OnClockRead(1_000_000, 1_000_000, 10, 0);
        r.OnClockRead(101_000_000, 1_000_100, 10, 0); // a 100 ms pause the clock did not see
        r.OnClockRead(102_000_000, 2_000_100, 10, 0);
        JsonElement o = Write(w => SummaryJson.WriteVcpuMeasurements(w, r));
        Assert.Equal(1, o.GetProperty("steps").GetInt64());
        Assert.Equal("-99999900", o.GetProperty("largest_step_ns").GetRawText());
        Assert.Equal("0", o.GetProperty("drift_ppm").GetRawText());
    }

    [Fact]
    public void Max_skew_is_null_when_no_two_vcpus_could_be_compared()
    {
        var vm = new VmRecorder("vm0", 1);
        vm.OnClockRead(0, 100, 130, 10, 0);
        vm.OnClockRead(0, 200, 230, 10, 0);
        JsonElement o = Write(w => SummaryJson.WriteCrossVcpu(w, vm)).GetProperty("cross_vcpu");
        Assert.Equal(JsonValueKind.Null, o.GetProperty("max_skew_ns").ValueKind);
    }

    [Fact]
    public void A_vcpu_without_reads_writes_null_statistics_and_zero_counts()
    {
        JsonElement o = Write(w => SummaryJson.WriteVcpuMeasurements(w, new VcpuRecorder(0)));
        foreach (JsonProperty p in o.GetProperty("skew_ns").EnumerateObject())
        {
            Assert.Equal(JsonValueKind.Null, p.Value.ValueKind);
        }
        foreach (JsonProperty p in o.GetProperty("read_cycles").EnumerateObject())
        {
            Assert.Equal(JsonValueKind.Null, p.Value.ValueKind);
        }
        Assert.Equal(JsonValueKind.Null, o.GetProperty("drift_ppm").ValueKind);
        Assert.Equal(0, o.GetProperty("reads").GetInt64());
        Assert.Equal(0, o.GetProperty("worst_backstep_ns").GetInt64());
        Assert.Equal(0, o.GetProperty("tsc_reads").GetInt64());
    }

    [Fact]
    public void Cross_vcpu_section_has_the_contract_field_names()
    {
        var vm = new VmRecorder("vm0", 2);
        vm.OnClockRead(0, 100, 130, 10, 0);
        vm.OnClockRead(1, 100, 110, 10, 0);
        vm.OnTscRead(0, 100, 9, false, 10);
        vm.OnTscRead(1, 100, 8, false, 10);
        JsonElement root = Write(w => SummaryJson.WriteCrossVcpu(w, vm));
        Assert.Equal(["cross_vcpu"], Keys(root));
        JsonElement o = root.GetProperty("cross_vcpu");
        Assert.Equal(["violations", "worst_backstep_ns", "max_skew_ns", "tsc_violations"], Keys(o));
        Assert.Equal(1, o.GetProperty("violations").GetInt64());
        Assert.Equal(20, o.GetProperty("worst_backstep_ns").GetInt64());
        Assert.Equal(20, o.GetProperty("max_skew_ns").GetInt64());
        Assert.Equal(1, o.GetProperty("tsc_violations").GetInt64());
    }

    [Theory]
    [InlineData(1.23456, "1.235")]
    [InlineData(-0.0001, "0")]        // no "-0"
    [InlineData(0.0625, "0.062")]     // exactly half way in binary too: half to even
    [InlineData(0.1875, "0.188")]
    [InlineData(1234567.0, "1234567")]
    [InlineData(-94500.00000001, "-94500")]
    public void Doubles_are_rounded_to_three_decimals_and_written_deterministically(double value, string expected)
    {
        JsonElement o = Write(w => w.WriteNumber("x", SummaryJson.Round(value)!.Value));
        Assert.Equal(expected, o.GetProperty("x").GetRawText());
    }

    [Fact]
    public void Non_finite_doubles_become_null()
    {
        Assert.Null(SummaryJson.Round(double.NaN));
        Assert.Null(SummaryJson.Round(double.PositiveInfinity));
        Assert.Null(SummaryJson.Round(null));
    }
}
