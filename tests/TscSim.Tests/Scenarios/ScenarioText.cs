using TscSim.Core.Scenarios;

namespace TscSim.Tests.Scenarios;

/// <summary>Scenario texts and helpers shared by the scenario tests.</summary>
internal static class ScenarioText
{
    /// <summary>The smallest valid scenario: every optional key left to its default.</summary>
    public const string Minimal = """
        name: minimal
        duration: 1s
        hosts:
          - id: h0
            cpu: intel-nehalem
            frequency: 2GHz
        vms:
          - id: vm0
            host: h0
            workload: |
              loop:
                jmp loop
        """;

    /// <summary>
    /// One host, one VM whose mapping holds <paramref name="vmLines"/> (each its own line, from line 10
    /// of the text on) before <c>workload: hlt</c>.
    /// </summary>
    public static string OneVm(params string[] vmLines) =>
        string.Join('\n',
        [
            "name: g", "duration: 1s", "hosts:", "  - id: h", "    cpu: intel-nehalem", "    frequency: 2GHz",
            "vms:", "  - id: vm0", "    host: h", .. vmLines.Select(l => "    " + l), "    workload: hlt",
        ]) + "\n";

    /// <summary>The example of DESIGN.md's scenario contract, with every key written.</summary>
    public const string Full = """
        name: legacy-guest-to-faster-host        # required
        description: "A 2.6.18 guest moves to a faster host"
        seed: 1
        duration: 20s
        hosts:
          - id: slow
            cpu: intel-nehalem
            frequency: 2GHz
            sockets: 1
            cores_per_socket: 2
            tsc: { drift: 0ppm, socket_skew: 0cycles, constant: true, nonstop: true, scaling: false }
            exit_cost: 1200cycles
          - id: fast
            cpu: intel-nehalem
            frequency: 3GHz
        hypervisor:
          policy: kvm-2011
          tsc_auto: true
          trapping: auto
          notify_guest: false
          rdtscp_passthrough: false
        vms:
          - id: vm0
            host: slow
            vcpus: 2
            pin: [0, 1]
            tsc_khz: 2000000
            hints: { fixed_rate: true, smp_stable: true }
            guest: linux-2.6.18
            workload: |
              loop:
                call clock_gettime
                work 10000cycles
                jmp loop
        events:
          - at: 10s
            live_migrate: { vm: vm0, to: fast, downtime: 100ms }
          - at: 5s
            cpufreq: { host: slow, cores: all, frequency: 1GHz }
        expect:
          - vm0.vcpu0.skew_ns.max_abs < 200ms
          - vm0.cross_vcpu.violations == 0
        """;

    /// <summary>Two hosts of different size and one VM, for event tests: append an <c>events:</c> list.</summary>
    public const string TwoHosts = """
        name: events
        duration: 20s
        hosts:
          - id: big
            cpu: intel-skylake
            frequency: 2GHz
            sockets: 2
            cores_per_socket: 2
          - id: small
            cpu: intel-skylake
            frequency: 3GHz
        vms:
          - id: vm0
            host: big
            vcpus: 2
            start: 1s
            workload: |
              hlt
        """;

    public static Scenario Load(string yaml, params string[] sets) => ScenarioLoader.LoadText(yaml, "s.yaml", sets);

    /// <summary>Every diagnostic of a text that must fail, rendered.</summary>
    public static IReadOnlyList<string> Errors(string yaml, params string[] sets)
    {
        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.LoadText(yaml, "s.yaml", sets));
        Assert.NotEmpty(ex.Diagnostics);
        return [.. ex.Diagnostics.Select(d => d.ToString())];
    }

    /// <summary>The one diagnostic of a text that must fail with exactly one.</summary>
    public static string Error(string yaml, params string[] sets)
    {
        var errors = Errors(yaml, sets);
        Assert.True(errors.Count == 1, "expected one diagnostic, got:\n" + string.Join("\n", errors));
        return errors[0];
    }

    /// <summary><paramref name="yaml"/> with the line starting <paramref name="linePrefix"/> (after indentation) replaced.</summary>
    public static string Replace(string yaml, string linePrefix, string newLine)
    {
        var lines = yaml.Split('\n');
        int i = Array.FindIndex(lines, l => l.TrimStart().StartsWith(linePrefix, StringComparison.Ordinal));
        Assert.True(i >= 0, $"no line starts with '{linePrefix}'");
        lines[i] = newLine;
        return string.Join('\n', lines);
    }
}
