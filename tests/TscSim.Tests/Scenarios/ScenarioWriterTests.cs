using TscSim.Core.Scenarios;
using TscSim.Core.Time;
using static TscSim.Tests.Scenarios.ScenarioText;

namespace TscSim.Tests.Scenarios;

/// <summary>The resolved YAML: every default written out, and loading it gives the same scenario.</summary>
public class ScenarioWriterTests
{
    private const string Unusual = """
        name: unusual.case_1
        description: "quotes \" and \\ backslashes,\na newline, unicode µs ✓, and: a colon"
        seed: 18446744073709551615
        duration: 1.5s
        hosts:
          - id: h-0
            cpu: amd-k8
            frequency: 14.31818MHz
            sockets: 4
            cores_per_socket: 3
            uptime: 1.234567ms
            exit_cost: 0cycles
            tsc: { drift: -0.125ppm, socket_skew: -10cycles, nonstop: true }
          - id: "true"
            cpu: intel-skylake
            frequency: 2999999999999mHz
        hypervisor:
          policy: xen-always-emulate
          rdtscp_passthrough: true
          scheduler_slice: 1.333333ms
        vms:
          - id: vm_a
            host: h-0
            vcpus: 3
            pin: [11, 0, 11]
            tsc_khz: 1
            hints: { smp_stable: true }
            guest: { profile: windows-2008r2, clocksource: hpet }
            start: 1ms
            workload: |+
              start:
                mov rax, 1   ; comment
              	jmp start

          - id: vm-b
            host: "true"
            workload: "  leading spaces\r\nand a carriage return"
        events:
          - at: 0s
            tsc_write: { host: h-0, cores: [5, 1], value: 18446744073709551615 }
          - at: 1.5s
            policy: { tsc_auto: false }
          - at: 2ms
            live_migrate: { vm: vm_a, to: "true", downtime: 0s }
          - at: 3ms
            migrate_vcpu: { vm: vm_a, vcpu: 2, to_core: 1 }
          - at: 4ms
            cstate: { host: h-0, cores: [0], state: C3, duration: 1ps }
          - at: 5ms
            cpufreq: { host: "true", frequency: 1.000001GHz }
        expect:
          - 'vm_a.clocksource == "hpet"'
          - vm-b.vcpu0.drift_ppm >= -5ppb
          - vm_a.vcpu0.overhead_pct<1.5%
        measurement:
          reads_csv_max_rows: 0
          reads_csv_interval: 250us
        """;

    public static TheoryData<string> Scenarios() => new()
    {
        Minimal,
        Full,
        Unusual,
        TwoHosts + """

            events:
              - at: 2s
                cpufreq: { host: big, cores: [0, 3], frequency: 1.2GHz }
              - at: 3s
                cstate: { host: big, cores: all, state: C1E, duration: 50ms }
              - at: 4s
                migrate_vcpu: { vm: vm0, vcpu: 1, to_core: 3 }
              - at: 5s
                tsc_write: { host: small, value: 0x10 }
              - at: 6s
                policy: { trapping: off, notify_guest: true, tsc_auto: true }
              - at: 7s
                live_migrate: { vm: vm0, to: small }
            """,
    };

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void Loading_the_written_yaml_gives_an_equal_scenario(string text)
    {
        var original = Load(text);

        string yaml = ScenarioWriter.ToYaml(original);
        var again = ScenarioLoader.LoadText(yaml, "resolved.yaml");

        Assert.Equal(original, again);
        Assert.Equal(yaml, ScenarioWriter.ToYaml(again));
    }

    [Fact]
    public void Unusual_values_survive_exactly()
    {
        var s = ScenarioLoader.LoadText(ScenarioWriter.ToYaml(Load(Unusual)), "resolved.yaml");

        Assert.Equal("quotes \" and \\ backslashes,\na newline, unicode µs ✓, and: a colon", s.Description);
        Assert.Equal(ulong.MaxValue, s.Seed);
        Assert.Equal(14_318_180_000L, s.Hosts[0].Frequency.Millihertz);
        Assert.Equal(-125L, s.Hosts[0].Tsc.Drift.PartsPerBillion);
        Assert.Equal(2_999_999_999_999L, s.Hosts[1].Frequency.Millihertz);
        Assert.Equal(1_333_333_000L, s.Hypervisor.SchedulerSlice!.Value.Picoseconds);
        Assert.Equal(1_234_567_000L, s.Hosts[0].Uptime.Picoseconds);
        Assert.Equal("start:\n  mov rax, 1   ; comment\n\tjmp start\n\n", s.Vms[0].Workload);
        Assert.Equal("  leading spaces\r\nand a carriage return", s.Vms[1].Workload);
        Assert.Equal(1_000_001_000_000L, ((CpufreqEvent)s.Events[5]).Frequency.Millihertz);
        Assert.Equal("vm_a.vcpu0.overhead_pct<1.5%", s.Expect[2].Text);
    }

    [Fact]
    public void Every_preset_and_default_is_written_out()
    {
        string yaml = ScenarioWriter.ToYaml(Load(Minimal + "\n"));

        Assert.Equal("""
            # resolved scenario: every preset and default expanded; loading it again gives the same scenario
            name: minimal
            seed: 1
            duration: 1s
            hosts:
              - id: h0
                cpu: intel-nehalem
                frequency: 2GHz
                sockets: 1
                cores_per_socket: 2
                uptime: 0s
                exit_cost: 1000cycles
                tsc: { drift: 0ppm, socket_skew: 0cycles, constant: true, nonstop: true, scaling: false }
            hypervisor:
              policy: kvm-2011
              tsc_auto: true
              trapping: auto
              notify_guest: false
              rdtscp_passthrough: false
              tolerance_ppm: 250
              scaling: true
              vmm: qemu
            vms:
              - id: vm0
                host: h0
                vcpus: 1
                hints: { fixed_rate: false, smp_stable: false }
                guest: { profile: linux-modern }
                start: 0s
                workload: |
                  loop:
                    jmp loop
            measurement:
              reads_csv_max_rows: 20000

            """, yaml);
    }

    [Theory]
    [InlineData("hlt", "|-")]
    [InlineData("hlt\n", "|")]
    [InlineData("hlt\n\n\n", "|+")]
    [InlineData("\n\nhlt\n", "|")]
    [InlineData("mov rax, 1 # not a YAML comment\n   \n\tjmp x\n--- not a document marker\n", "|")]
    [InlineData("ünïcode ✓\n", "|")]
    [InlineData("  leading spaces\n", "\"")]
    [InlineData("\tleading tab\n", "\"")]
    [InlineData("a\r\nb\r\n", "\"")]
    [InlineData("bell \u0007\n", "\"")]
    public void Workload_text_round_trips_exactly(string workload, string style)
    {
        var s = Load(Minimal);
        s = s with { Vms = [s.Vms[0] with { Workload = workload }] };

        string yaml = ScenarioWriter.ToYaml(s);
        var again = ScenarioLoader.LoadText(yaml, "resolved.yaml");

        Assert.Contains($"workload: {style}", yaml, StringComparison.Ordinal);
        Assert.Equal(workload, again.Vms[0].Workload);
        Assert.Equal(s, again);
    }

    [Fact]
    public void Written_workload_positions_still_map_to_the_written_file()
    {
        string yaml = ScenarioWriter.ToYaml(Load(Minimal));
        var vm = ScenarioLoader.LoadText(yaml, "resolved.yaml").Vms[0];
        string[] lines = yaml.Split('\n');

        var at = vm.MapWorkloadPosition(2, 3);

        Assert.Equal("jmp", lines[at.Line - 1].Substring(at.Column - 1, 3));
    }

    [Fact]
    public void Scenario_equality_sees_changes_deep_in_lists()
    {
        var s = Load(Full);
        var changed = s with { Events = [s.Events[0], (CpufreqEvent)s.Events[1] with { Frequency = Frequency.FromMegahertz(999) }] };

        Assert.NotEqual(s, changed);
        Assert.Equal(s, s with { Events = [s.Events[0], s.Events[1]] });
        Assert.Equal(s.GetHashCode(), (s with { Events = [s.Events[0], s.Events[1]] }).GetHashCode());
    }
}
