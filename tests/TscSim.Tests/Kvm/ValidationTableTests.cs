using Xunit.Abstractions;
using TscSim.Cli;
using TscSim.Kvm;

namespace TscSim.Tests.Kvm;

public class ValidationTableTests
{
    [Fact]
    public void Csv_quotes_commas_and_quotes_and_ends_lines_with_lf()
    {
        var rows = new[]
        {
            new ValidationRow("a.b", "fact, with comma", "1,234", "say \"x\"", Verdict.Agree, "plain"),
            new ValidationRow("c", "f", "r", "m", Verdict.Open, "why"),
        };
        string csv = ValidationCsv.Write(rows, "6.18", "2026-11-30");
        Assert.Equal(
            ValidationCsv.Header + "\n" +
            "a.b,\"fact, with comma\",\"1,234\",\"say \"\"x\"\"\",agree,plain,6.18,2026-11-30\n" +
            "c,f,r,m,open,why,6.18,2026-11-30\n", csv);
    }

    [Fact]
    public void Validate_kvm_refuses_to_overwrite_a_file_it_did_not_write()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tscsim-foreign-{Environment.ProcessId}.csv");
        File.WriteAllText(path, "precious,data\n");
        try
        {
            var (o, e) = (new StringWriter(), new StringWriter());
            int code = TscSimCli.Run(["validate-kvm", "--out", path], o, e);
            Assert.Equal(ExitCodes.BadInput, code);
            Assert.Contains($"{path}:1:1:", e.ToString());
            Assert.Equal("precious,data\n", File.ReadAllText(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

/// <summary>Real KVM runs measure rates and TSC offsets against the host's clock: alone, not beside other tests' load.</summary>
[CollectionDefinition(nameof(RealKvmCollection), DisableParallelization = true)]
public sealed class RealKvmCollection;

/// <summary>The real comparison, when this machine has a usable /dev/kvm (otherwise it returns early, saying so).</summary>
[Collection(nameof(RealKvmCollection))]
public class RealKvmTests(ITestOutputHelper log)
{
    [Fact]
    public void The_real_comparison_has_no_unlisted_disagreement()
    {
        using KvmSystem? kvm = KvmSystem.TryOpen(out string why);
        if (kvm is null)
        {
            log.WriteLine($"skipped: no usable KVM ({why})");
            return;
        }
        var rows = new ValidationCases(kvm, ValidationCases.ReadHost(kvm)).RunAll();
        foreach (var r in rows)
        {
            log.WriteLine($"{r.Id}: real {r.Real} | model {r.Model} | {r.VerdictText}");
        }
        Assert.Equal(30, rows.Count);
        var disagreements = rows.Where(r => r.Verdict == Verdict.Disagree).Select(r => $"{r.Id}: real {r.Real}, model {r.Model}").ToList();
        Assert.True(disagreements.Count == 0, string.Join("\n", disagreements));
        // Facts that hold on any x86 KVM without TSC scaling: the model's pvclock arithmetic is KVM's.
        Assert.All(rows.Where(r => r.Id is "pvclock.host.mul" or "pvclock.host.shift" or "set-tsc-khz.fast.result"), r => Assert.Equal(Verdict.Agree, r.Verdict));
        Assert.Equal(rows.Select(r => r.Id).Distinct().Count(), rows.Count);
    }

    [Fact]
    public void Validate_kvm_writes_its_table_and_can_overwrite_its_own()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tscsim-validate-{Environment.ProcessId}.csv");
        try
        {
            for (int i = 0; i < 2; i++)
            {
                var (o, e) = (new StringWriter(), new StringWriter());
                int code = TscSimCli.Run(["validate-kvm", "--out", path], o, e);
                Assert.True(code == ExitCodes.Success, e.ToString());
                if (o.ToString().Contains("no usable KVM", StringComparison.Ordinal))
                {
                    Assert.False(File.Exists(path));
                    return;
                }
                Assert.StartsWith(ValidationCsv.Header + "\n", File.ReadAllText(path));
            }
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Validate_kvm_runs_a_scenario_s_bare_workload_and_names_what_it_cannot_run()
    {
        var run = ValidateScenario("bare", """
            name: bare
            duration: 300ms
            hosts:
              - id: h
                cpu: intel-skylake
                frequency: 2GHz
            hypervisor:
              policy: kvm-modern
            vms:
              - id: vm0
                host: h
                vcpus: 2
                guest: linux-modern
                workload: |
                  mov rbx, 50
                  again:
                    rdtsc
                    probe rax
                    mov rax, rdi
                    probe rax
                    out 0x10, eax
                    dec rbx
                    jne again
                    hlt
              - id: vm1
                host: h
                vcpus: 1
                guest: linux-modern
                workload: |
                  loop:
                    call clock_gettime
                    jmp loop
              - id: spin
                host: h
                vcpus: 1
                guest: linux-modern
                workload: |
                  loop:
                    work 1000000cycles
                    jmp loop
              - id: slow
                host: h
                vcpus: 1
                tsc_khz: 1000000
                guest: linux-modern
                workload: |
                  hlt
            """);
        Assert.True(run.Code == ExitCodes.Success, run.Err);
        if (!run.KvmUsable)
        {
            return;
        }
        var rows = run.Csv.Skip(1).Select(l => l.Split(',')[0] + " " + (l.Contains(",agree,", StringComparison.Ordinal) ? "agree" : l)).ToArray();
        // Two vCPUs, each 50 port writes and 100 probes (50 TSC readings, 50 of its index): exact counts on both sides.
        Assert.Contains("bare/vm0.exits agree", rows);
        Assert.Contains("bare/vm0.values agree", rows);
        Assert.Contains("bare/vm0.ends agree", rows);
        Assert.Contains("bare/vm0.pvclock.mul agree", rows);
        Assert.Contains(run.Csv, l => l.StartsWith("bare/vm0.exits,", StringComparison.Ordinal) && l.Contains("port I/O 100, HLT 0", StringComparison.Ordinal));
        Assert.Contains(run.Csv, l => l.StartsWith("bare/vm0.values,", StringComparison.Ordinal) && l.Contains("200 probes: 100 equal, 100 TSC readings", StringComparison.Ordinal));
        Assert.Contains(run.Csv, l => l.StartsWith("bare/vm1.runs,", StringComparison.Ordinal) && l.Contains("cannot run on real KVM: the workload needs the guest kernel", StringComparison.Ordinal)
            && l.Contains("bare.yaml:31:14:", StringComparison.Ordinal));
        Assert.Contains("cannot run on real KVM", run.Out);
        // A workload that never halts is stopped at min(duration, 1 s) by the harness's NMI; the model runs on.
        Assert.Contains(run.Csv, l => l.StartsWith("bare/spin.ends,", StringComparison.Ordinal) && l.Contains("stopped at the 300ms limit", StringComparison.Ordinal)
            && l.Contains(",agree,", StringComparison.Ordinal));
        Assert.Contains(run.Csv, l => l.StartsWith("bare/spin.exits,", StringComparison.Ordinal) && l.Contains("not measured", StringComparison.Ordinal));
        // 1 GHz without TSC scaling, below the host's rate: KVM refuses it and so does the model; nothing else is compared.
        if (!string.Join('\n', run.Csv).Contains("TSC scaling present", StringComparison.Ordinal))
        {
            Assert.Contains(run.Csv, l => l.StartsWith("bare/slow.set-tsc-khz,", StringComparison.Ordinal) && l.Contains("refused (errno 22)", StringComparison.Ordinal)
                && l.Contains(",agree,", StringComparison.Ordinal));
            Assert.Contains(run.Csv, l => l.StartsWith("bare/slow.runs,", StringComparison.Ordinal) && l.Contains("the model refuses the VM", StringComparison.Ordinal));
        }
    }

    [Fact]
    public void A_new_disagreement_in_a_scenario_is_exit_1_and_named()
    {
        // CPUID leaf 1's signature: the model answers with its CPU preset's (intel-nehalem or an AMD
        // preset for this host), real KVM with this host's own family/model/stepping.
        var run = ValidateScenario("cpuid", """
            name: cpuid
            duration: 100ms
            hosts:
              - id: h
                cpu: intel-skylake
                frequency: 2GHz
            hypervisor:
              policy: kvm-modern
            vms:
              - id: vm0
                host: h
                vcpus: 1
                guest: linux-modern
                workload: |
                  mov rax, 1
                  cpuid
                  probe rax
                  hlt
            """);
        if (!run.KvmUsable)
        {
            return;
        }
        Assert.Equal(ExitCodes.ExpectationFailed, run.Code);
        Assert.Contains("validate-kvm: cpuid/vm0.values: real KVM 1 probes: 0 equal, 0 TSC readings; 1 differ", run.Err);
        Assert.Contains("a disagreement not listed as open", run.Err);
        Assert.Contains(run.Csv, l => l.StartsWith("cpuid/vm0.values,", StringComparison.Ordinal) && l.Contains(",DISAGREE,", StringComparison.Ordinal));
    }

    private readonly record struct ValidateRun(int Code, string Out, string Err, bool KvmUsable, string[] Csv);

    /// <summary>Runs <c>validate-kvm</c> on <paramref name="yaml"/> written as NAME.yaml in a temporary folder, its table to a CSV there.</summary>
    private ValidateRun ValidateScenario(string name, string yaml)
    {
        using var dir = new TempFolder();
        string scenario = dir.Write(name + ".yaml", yaml);
        string csv = Path.Combine(dir.Path, "out.csv");
        var (o, e) = (new StringWriter(), new StringWriter());
        int code = TscSimCli.Run(["validate-kvm", scenario, "--out", csv], o, e);
        log.WriteLine(o.ToString());
        bool usable = !o.ToString().Contains("no usable KVM", StringComparison.Ordinal);
        if (!usable)
        {
            log.WriteLine("skipped: no usable KVM");
        }
        return new ValidateRun(code, o.ToString(), e.ToString(), usable, usable && File.Exists(csv) ? File.ReadAllLines(csv) : []);
    }
}
