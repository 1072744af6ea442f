using System.Text.Json;

namespace TscSim.Core.Measurement;

/// <summary>
/// Writes the Measurement parts of <c>summary.json</c> (schema <c>tscsim.summary/1</c>) with the
/// field names of the contract in DESIGN.md. The caller writes everything around them (exits,
/// trapping, clocksource, …).
/// </summary>
/// <remarks>
/// <para>Numbers: counts and exact integer statistics (min, max, max_abs, final, backward steps,
/// max skew) are JSON integers; means, P² quantiles and drift are rounded to
/// <see cref="Decimals"/> decimals (half to even; −0 written as 0) and written in the shortest
/// form that reads back as the same double, so the text is the same on every machine.</para>
/// <para>With no reads, every statistic in <c>skew_ns</c> and <c>read_cycles</c> is <c>null</c>
/// (the keys are still there), and so is <c>drift_ppm</c> (also with a single read, or reads all
/// at one true time, or no two between steps). Counts are 0, and backward steps and
/// <c>largest_step_ns</c> are 0 when there was none (the largest of no steps); <c>max_skew_ns</c>
/// is null when no two vCPUs' reads were close enough to compare (one vCPU, for one).</para>
/// </remarks>
public static class SummaryJson
{
    /// <summary>Decimals kept for non-integer values (ns, cycles, ppm: 3 decimals of ppm is a ppb).</summary>
    public const int Decimals = 3;

    /// <summary>
    /// Writes a vCPU's measurement properties into the JSON object the caller has opened:
    /// <c>id</c>, <c>reads</c>, <c>skew_ns</c> {<c>min</c>, <c>max</c>, <c>mean</c>, <c>p50</c>,
    /// <c>p99</c>, <c>max_abs</c>, <c>final</c>}, <c>drift_ppm</c>, <c>steps</c>,
    /// <c>largest_step_ns</c>, <c>violations</c>,
    /// <c>worst_backstep_ns</c>, <c>read_cycles</c> {<c>mean</c>, <c>p50</c>, <c>p99</c>},
    /// <c>tsc_reads</c>, <c>tsc_violations</c>, <c>tsc_worst_backstep_cycles</c>.
    /// </summary>
    public static void WriteVcpuMeasurements(Utf8JsonWriter writer, VcpuRecorder vcpu)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(vcpu);
        writer.WriteNumber("id", vcpu.Id);
        writer.WriteNumber("reads", vcpu.Reads);

        StatsSummary skew = vcpu.SkewNs;
        writer.WriteStartObject("skew_ns");
        WriteInteger(writer, "min", skew.Min);
        WriteInteger(writer, "max", skew.Max);
        WriteRounded(writer, "mean", skew.Mean);
        WriteRounded(writer, "p50", skew.P50);
        WriteRounded(writer, "p99", skew.P99);
        WriteInteger(writer, "max_abs", skew.MaxAbs);
        WriteInteger(writer, "final", skew.Final);
        writer.WriteEndObject();

        WriteRounded(writer, "drift_ppm", vcpu.DriftPpm);
        writer.WriteNumber("steps", vcpu.Steps);
        writer.WriteNumber("largest_step_ns", vcpu.LargestStepNs);
        writer.WriteNumber("violations", vcpu.Violations);
        writer.WriteNumber("worst_backstep_ns", vcpu.WorstBackstepNs);
        writer.WriteNumber("wild_reads", vcpu.WildReads);

        StatsSummary cycles = vcpu.ReadCycles;
        writer.WriteStartObject("read_cycles");
        WriteRounded(writer, "mean", cycles.Mean);
        WriteRounded(writer, "p50", cycles.P50);
        WriteRounded(writer, "p99", cycles.P99);
        writer.WriteEndObject();

        writer.WriteNumber("tsc_reads", vcpu.TscReads);
        writer.WriteNumber("tsc_violations", vcpu.TscViolations);
        writer.WriteNumber("tsc_worst_backstep_cycles", vcpu.TscWorstBackstepCycles);
    }

    /// <summary>
    /// Writes the property <c>cross_vcpu</c> {<c>violations</c>, <c>worst_backstep_ns</c>,
    /// <c>max_skew_ns</c>, <c>tsc_violations</c>} into the VM's JSON object the caller has opened.
    /// </summary>
    public static void WriteCrossVcpu(Utf8JsonWriter writer, VmRecorder vm)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ArgumentNullException.ThrowIfNull(vm);
        writer.WriteStartObject("cross_vcpu");
        writer.WriteNumber("violations", vm.CrossViolations);
        writer.WriteNumber("worst_backstep_ns", vm.CrossWorstBackstepNs);
        WriteInteger(writer, "max_skew_ns", vm.CrossMaxSkewNs);
        writer.WriteNumber("tsc_violations", vm.CrossTscViolations);
        writer.WriteEndObject();
    }

    /// <summary>
    /// <paramref name="value"/> as written: rounded to <see cref="Decimals"/> decimals, half to
    /// even, −0 as 0; null for null or a non-finite value (JSON has no NaN or infinity).
    /// </summary>
    public static double? Round(double? value)
    {
        if (value is not double v || !double.IsFinite(v))
        {
            return null;
        }
        double r = Math.Round(v, Decimals, MidpointRounding.ToEven);
        return r == 0 ? 0.0 : r;
    }

    private static void WriteRounded(Utf8JsonWriter writer, string name, double? value)
    {
        if (Round(value) is double r)
        {
            writer.WriteNumber(name, r);
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    private static void WriteInteger(Utf8JsonWriter writer, string name, long? value)
    {
        if (value is long v)
        {
            writer.WriteNumber(name, v);
        }
        else
        {
            writer.WriteNull(name);
        }
    }

    private static void WriteInteger(Utf8JsonWriter writer, string name, ulong? value)
    {
        if (value is ulong v)
        {
            writer.WriteNumber(name, v);
        }
        else
        {
            writer.WriteNull(name);
        }
    }
}
