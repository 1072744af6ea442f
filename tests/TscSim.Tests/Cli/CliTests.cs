using System.Text.Json;
using TscSim.Cli;

namespace TscSim.Tests.Cli;

public class CliTests
{
    private static (int Code, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int code = TscSimCli.Run(args, output, error);
        return (code, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("run")]
    [InlineData("validate")]
    [InlineData("sweep")]
    [InlineData("merge")]
    [InlineData("plot")]
    [InlineData("presets")]
    [InlineData("bench")]
    public void Every_verb_has_help(string verb)
    {
        var (code, output, _) = Run(verb, "--help");
        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("Usage:", output, StringComparison.Ordinal);
        Assert.Contains(verb, output, StringComparison.Ordinal);
    }

    [Fact]
    public void Presets_lists_every_cpu_model_with_parameters_and_sources()
    {
        var (code, output, _) = Run("presets");
        Assert.Equal(ExitCodes.Success, code);
        foreach (var name in new[] { "intel-core2", "intel-nehalem", "intel-skylake", "amd-k8", "amd-zen2" })
        {
            Assert.Contains($"  {name}: ", output, StringComparison.Ordinal);
        }
        Assert.Contains("scaling vmx-16.48", output, StringComparison.Ordinal);
        Assert.Contains("exit_round_trip 1350cycles", output, StringComparison.Ordinal);
        Assert.Contains("rdtsc 25", output, StringComparison.Ordinal);
        Assert.Contains("sources: instruction costs: Agner Fog", output, StringComparison.Ordinal);
        foreach (var policy in new[] { "kvm-2011", "kvm-modern", "xen-default", "xen-always-emulate", "xen-native", "hyperv" })
        {
            Assert.Contains($"  {policy}: ", output, StringComparison.Ordinal);
        }
        Assert.Contains("tolerance_ppm: 250", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Usage_errors_exit_2_with_a_message()
    {
        var (code, _, err) = Run("frobnicate");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("frobnicate", err, StringComparison.Ordinal);

        (code, _, err) = Run("bench", "--events", "-5");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("must be positive", err, StringComparison.Ordinal);

        (code, _, _) = Run("bench", "--rounds", "many");
        Assert.Equal(ExitCodes.BadInput, code);
    }

    [Fact]
    public void Bench_json_reports_hold_model_rates_for_both_queue_sizes()
    {
        var (code, output, _) = Run("bench", "--json", "--events", "20000", "--rounds", "1");
        Assert.Equal(ExitCodes.Success, code);
        using var doc = JsonDocument.Parse(output);
        var hold = doc.RootElement.GetProperty("engine_hold_events_per_s");
        Assert.Equal(["1000", "100000"], hold.EnumerateObject().Select(p => p.Name));
        Assert.All(hold.EnumerateObject(), p => Assert.True(p.Value.GetDouble() > 0));
        Assert.True(doc.RootElement.GetProperty("interpreter_instructions_per_s").GetDouble() > 0);
        Assert.True(doc.RootElement.GetProperty("interpreter_rdtsc_per_s").GetDouble() > 0);
    }

    [Fact]
    public void Bench_only_measures_the_named_parts()
    {
        var (code, output, _) = Run("bench", "--json", "--only", "interpreter", "--events", "20000", "--rounds", "1");
        Assert.Equal(ExitCodes.Success, code);
        using (var doc = JsonDocument.Parse(output))
        {
            Assert.Equal(["interpreter_instructions_per_s", "interpreter_rdtsc_per_s", "interpreter_rdtsc_vs_real", "real_rdtsc_per_s"],
                doc.RootElement.EnumerateObject().Select(p => p.Name).Order(StringComparer.Ordinal));
        }

        (code, output, _) = Run("bench", "--json", "--only", "engine,reference", "--events", "20000", "--rounds", "1");
        Assert.Equal(ExitCodes.Success, code);
        using (var doc = JsonDocument.Parse(output))
        {
            string[] names = [.. doc.RootElement.EnumerateObject().Select(p => p.Name)];
            Assert.Contains("engine_hold_events_per_s", names);
            Assert.Contains("simulated_to_wall_ratio", names);
            Assert.Contains("simulated_to_thread_cpu_ratio", names);
            Assert.DoesNotContain("interpreter_instructions_per_s", names);
            Assert.True(doc.RootElement.GetProperty("simulated_to_wall_ratio").GetDouble() > 0);
        }

        var (bad, _, err) = Run("bench", "--only", "disk");
        Assert.Equal(ExitCodes.BadInput, bad);
        Assert.Contains("unknown part 'disk'", err, StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_text_names_the_figures()
    {
        var (code, output, _) = Run("bench", "--events", "20000", "--rounds", "1");
        Assert.Equal(ExitCodes.Success, code);
        Assert.Contains("N =    1000 pending", output, StringComparison.Ordinal);
        Assert.Contains("M events/s", output, StringComparison.Ordinal);
        Assert.Contains("M rdtsc/s", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Bench_runs_the_cxx_reference_beside_the_engine_and_reports_the_ratio()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // the stand-in reference below is a shell script
        }
        // A stand-in for reference/hold that claims 20,000 events in 0.004 s: 5 M events/s.
        string dir = Path.Combine(Path.GetTempPath(), $"tscsim-cxx-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        try
        {
            string fake = Path.Combine(dir, "hold");
            File.WriteAllText(fake, "#!/bin/sh\necho \"$1 $2 0.004\"\n");
            File.SetUnixFileMode(fake, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var figure = Bench.HoldEventsPerSecond(1_000, 20_000, rounds: 3, cxx: fake);
            Assert.Equal(5_000_000, figure.CxxEventsPerSecond);
            Assert.Equal(figure.EventsPerSecond / 5_000_000, figure.Ratio!.Value, 9);

            // A reference that fails gives no C++ figure (and no ratio) rather than a wrong one.
            File.WriteAllText(fake, "#!/bin/sh\nexit 3\n");
            var failed = Bench.HoldEventsPerSecond(1_000, 20_000, rounds: 1, cxx: fake);
            Assert.Null(failed.CxxEventsPerSecond);
            Assert.Null(failed.Ratio);
            Assert.True(failed.EventsPerSecond > 0);
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Bench_datacenter_file_must_exist()
    {
        var (code, _, err) = Run("bench", "--datacenter-file", "/nonexistent/dc.yaml", "--events", "1000", "--rounds", "1");
        Assert.Equal(ExitCodes.BadInput, code);
        Assert.Contains("no such file", err, StringComparison.Ordinal);
    }
}
