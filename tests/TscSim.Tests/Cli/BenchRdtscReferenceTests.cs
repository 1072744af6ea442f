using System.Text.Json;
using TscSim.Cli;

namespace TscSim.Tests.Cli;

/// <summary>
/// <c>tscsim bench --json</c> reports the real RDTSC rate of the C reference
/// (tests/TscSim.Benchmarks/reference/rdtsc) and TscSim's rate over it, when the binary exists.
/// A stand-in script with a known rate takes the binary's place through $TSCSIM_RDTSC_REFERENCE.
/// </summary>
public class BenchRdtscReferenceTests
{
    private static JsonDocument Bench(string? reference)
    {
        string? saved = Environment.GetEnvironmentVariable(RdtscReference.Variable);
        try
        {
            Environment.SetEnvironmentVariable(RdtscReference.Variable, reference);
            var output = new StringWriter();
            int code = TscSimCli.Run(["bench", "--json", "--events", "20000", "--rounds", "1"], output, new StringWriter());
            Assert.Equal(ExitCodes.Success, code);
            return JsonDocument.Parse(output.ToString());
        }
        finally
        {
            Environment.SetEnvironmentVariable(RdtscReference.Variable, saved);
        }
    }

    [Fact]
    public void The_real_rate_and_the_ratio_come_from_the_reference_binary()
    {
        if (OperatingSystem.IsWindows())
        {
            return; // the stand-in is a shell script
        }
        string dir = Directory.CreateTempSubdirectory("tscsim-rdtsc-").FullName;
        try
        {
            string script = Path.Combine(dir, "rdtsc_rate");
            File.WriteAllText(script, "#!/bin/sh\necho \"$1 0.5 125000000\"\n");
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            using var doc = Bench(script);
            double tscsim = doc.RootElement.GetProperty("interpreter_rdtsc_per_s").GetDouble();
            Assert.Equal(125_000_000, doc.RootElement.GetProperty("real_rdtsc_per_s").GetDouble());
            Assert.Equal(Math.Round(tscsim / 125_000_000, 3), doc.RootElement.GetProperty("interpreter_rdtsc_vs_real").GetDouble());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Without_the_reference_the_real_rate_and_the_ratio_are_null()
    {
        using var doc = Bench(Path.Combine(Path.GetTempPath(), "tscsim-no-such-rdtsc-reference"));
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("real_rdtsc_per_s").ValueKind);
        Assert.Equal(JsonValueKind.Null, doc.RootElement.GetProperty("interpreter_rdtsc_vs_real").ValueKind);
        Assert.True(doc.RootElement.GetProperty("interpreter_rdtsc_per_s").GetDouble() > 0);
    }
}
