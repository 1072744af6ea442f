using System.Diagnostics;
using TscSim.Core.Scenarios;
using static TscSim.Tests.Scenarios.ScenarioText;

namespace TscSim.Tests.Scenarios;

/// <summary>Bad input: every class of mistake gives a diagnostic at the right place saying what was expected.</summary>
public class ScenarioDiagnosticTests
{
    [Fact]
    public void Bare_number_for_a_duration_asks_for_a_unit()
    {
        Assert.Equal("s.yaml:2:11: duration: '10' has no unit; expected a duration with a unit, e.g. 20s",
            Error(Replace(Minimal, "duration:", "duration: 10")));
    }

    [Fact]
    public void Bare_number_for_a_frequency_asks_for_a_unit()
    {
        Assert.Equal("s.yaml:6:16: hosts[0].frequency: '2400' has no unit; expected a frequency with a unit, e.g. 2.4GHz",
            Error(Replace(Minimal, "frequency:", "    frequency: 2400")));
    }

    [Fact]
    public void Unknown_unit_points_at_the_unit()
    {
        Assert.Equal("s.yaml:2:14: duration: unknown unit 'sec'; expected a duration such as 250ms or 20s (units: ps, ns, us, µs, μs, ms, s, min, h)",
            Error(Replace(Minimal, "duration:", "duration: 10 sec")));
    }

    [Fact]
    public void Unit_of_another_quantity_is_named()
    {
        Assert.Equal("s.yaml:6:17: hosts[0].frequency: 's' is a unit of duration, but a frequency is expected here; " +
            "expected a frequency such as 2.4GHz or 14.31818MHz (units: mHz, Hz, kHz, MHz, GHz)",
            Error(Replace(Minimal, "frequency:", "    frequency: 2s")));
    }

    [Theory]
    [InlineData("duration:", "duration: -5s", "s.yaml:2:11: duration: -5s is out of range; expected a duration greater than 0 and at most 30 days (720h)")]
    [InlineData("duration:", "duration: 0s", "s.yaml:2:11: duration: 0s is out of range; expected a duration greater than 0 and at most 30 days (720h)")]
    [InlineData("duration:", "duration: 721h", "s.yaml:2:11: duration: 721h is out of range; expected a duration greater than 0 and at most 30 days (720h)")]
    [InlineData("frequency:", "    frequency: 20GHz", "s.yaml:6:16: hosts[0].frequency: 20GHz is out of range; expected a frequency from 1MHz to 10GHz")]
    [InlineData("frequency:", "    frequency: 2GHz\n    cores_per_socket: 0", "s.yaml:7:23: hosts[0].cores_per_socket: 0 is out of range; expected an integer from 1 to 256")]
    [InlineData("frequency:", "    frequency: 2GHz\n    sockets: -1", "s.yaml:7:14: hosts[0].sockets: -1 is out of range; expected an integer from 1 to 8")]
    [InlineData("host: h0", "    host: h0\n    vcpus: 1000000000", "s.yaml:10:12: vms[0].vcpus: 1000000000 is out of range; expected an integer from 1 to 64")]
    [InlineData("host: h0", "    host: h0\n    vcpus: 99999999999999999999999", "s.yaml:10:12: vms[0].vcpus: 99999999999999999999999 is out of range; expected an integer from 1 to 64")]
    [InlineData("host: h0", "    host: h0\n    vcpus: 2.5", "s.yaml:10:12: vms[0].vcpus: expected an integer from 1 to 64, got '2.5'")]
    [InlineData("host: h0", "    host: h0\n    hints: { fixed_rate: yes }", "s.yaml:10:26: vms[0].hints.fixed_rate: expected true or false, got 'yes'")]
    [InlineData("name:", "name: My Scenario", "s.yaml:1:7: name: 'My Scenario' is not a valid scenario name; expected lowercase letters, digits, '.', '_' and '-' (at most 100, not only dots: it names the results folder)")]
    [InlineData("name:", "name: ..", "s.yaml:1:7: name: '..' is not a valid scenario name; expected lowercase letters, digits, '.', '_' and '-' (at most 100, not only dots: it names the results folder)")]
    [InlineData("name:", "name: x\nseed: -1", "s.yaml:2:7: seed: -1 is out of range; expected an integer from 0 to 18446744073709551615")]
    public void Impossible_values_are_rejected_with_the_allowed_range(string line, string replacement, string expected)
    {
        Assert.Equal(expected, Error(Replace(Minimal, line, replacement)));
    }

    [Fact]
    public void A_map_where_a_list_is_expected_is_a_type_error()
    {
        string text = """
            name: x
            duration: 1s
            hosts: { id: h0, cpu: intel-nehalem, frequency: 2GHz }
            vms:
              - id: vm0
                host: h0
                workload: hlt
            """;

        // One error: the VM's reference to h0 is not reported again while the hosts list is unreadable.
        Assert.Equal("s.yaml:3:8: hosts: expected a list of hosts ('- id: ...' items), got a mapping", Error(text));
    }

    [Fact]
    public void A_scalar_where_a_mapping_is_expected_is_a_type_error()
    {
        Assert.Equal("s.yaml:10:12: vms[0].hints: expected a mapping (fixed_rate, smp_stable), got 'true'",
            Error(Replace(Minimal, "host: h0", "    host: h0\n    hints: true")));
    }

    [Fact]
    public void Missing_required_key_is_reported_at_its_mapping()
    {
        string text = Minimal.Replace("    frequency: 2GHz\n", "", StringComparison.Ordinal);

        Assert.Equal("s.yaml:4:5: hosts[0]: missing required key 'frequency'; expected the nominal core frequency, e.g. frequency: 2.4GHz", Error(text));
    }

    [Fact]
    public void Required_key_without_a_value_is_reported_at_the_key()
    {
        Assert.Equal("s.yaml:2:1: duration: no value given; expected the simulated time to run, e.g. duration: 20s",
            Error(Replace(Minimal, "duration:", "duration:")));
    }

    [Fact]
    public void Unknown_key_suggests_the_nearest_valid_key()
    {
        Assert.Equal("s.yaml:10:5: unknown key 'vcpu' in vms[0]; did you mean 'vcpus'? " +
            "expected one of: id, host, vcpus, pin, tsc_khz, hints, guest, hpet, workload, start",
            Error(Replace(Minimal, "host: h0", "    host: h0\n    vcpu: 2")));
    }

    [Fact]
    public void A_short_key_two_edits_from_a_valid_one_gets_no_hint()
    {
        // One rule for every did-you-mean (Text/Suggestions): at most one edit per three characters, at least one.
        Assert.Equal("s.yaml:10:5: unknown key 'cpu' in vms[0]; " +
            "expected one of: id, host, vcpus, pin, tsc_khz, hints, guest, hpet, workload, start",
            Error(Replace(Minimal, "host: h0", "    host: h0\n    cpu: 2")));
    }

    [Fact]
    public void Unknown_top_level_key_suggests_and_lists_the_keys()
    {
        Assert.Equal("s.yaml:2:1: unknown key 'sed' at the top level; did you mean 'seed'? " +
            "expected one of: name, description, seed, duration, hosts, hypervisor, vms, events, expect, measurement",
            Error(Replace(Minimal, "name:", "name: x\nsed: 4")));
    }

    [Fact]
    public void Unknown_key_far_from_every_valid_key_only_lists_them()
    {
        string text = Replace(Minimal, "frequency:", "    frequency: 2GHz\n    tsc:\n      color: red");

        Assert.Equal("s.yaml:8:7: unknown key 'color' in hosts[0].tsc; expected one of: drift, socket_skew, constant, nonstop, scaling",
            Error(text));
    }

    [Fact]
    public void Unknown_preset_suggests_the_nearest()
    {
        Assert.Equal("s.yaml:5:10: hosts[0].cpu: unknown CPU preset 'intel-nehalm'; did you mean 'intel-nehalem'? " +
            "expected one of: intel-core2, intel-nehalem, intel-skylake, amd-k8, amd-zen2",
            Error(Replace(Minimal, "cpu:", "    cpu: intel-nehalm")));
    }

    [Fact]
    public void Unknown_host_reference_suggests_a_host_id()
    {
        Assert.Equal("s.yaml:9:11: vms[0].host: no host has the id 'h1'; did you mean 'h0'? expected one of: h0",
            Error(Replace(Minimal, "host: h0", "    host: h1")));
    }

    [Fact]
    public void Pin_must_name_one_existing_core_per_vcpu()
    {
        var errors = Errors(Replace(Minimal, "host: h0", "    host: h0\n    vcpus: 2\n    pin: [0, 2, 1]"));

        Assert.Equal(
        [
            "s.yaml:11:10: vms[0].pin: 3 cores for 2 vCPUs; expected one core index per vCPU",
            "s.yaml:11:14: vms[0].pin[1]: 2 is out of range; expected a core index of host 'h0' from 0 to 1",
        ], errors);
    }

    [Fact]
    public void Folded_workload_is_rejected()
    {
        Assert.Equal("s.yaml:10:15: vms[0].workload: '>' folds the program's lines together; expected a literal block '|'",
            Error(Replace(Minimal, "workload:", "    workload: >")));
    }

    [Fact]
    public void Duplicate_ids_and_keys_are_reported()
    {
        string text = Minimal + """

              - id: vm0
                host: h0
                host: h0
                workload: hlt
            """;

        Assert.Equal(
        [
            "s.yaml:13:5: vms[1].id: duplicate VM id 'vm0' (first at line 8); expected unique ids",
            "s.yaml:15:5: duplicate key 'host' (first given at line 14); expected each key once per mapping",
        ], Errors(text));
    }

    [Fact]
    public void All_errors_of_a_file_are_reported_at_once_in_file_order()
    {
        string text = """
            name: many-errors
            seed: -1
            duration: 20s
            hosts:
              - id: h0
                cpu: intel-nehalem
                frequency: 2400
            vms:
              - id: vm0
                host: h0
                vcpus: 0
                workload: hlt
            expect:
              - vm0.cross_vcpu.violations = 0
            """;

        var ex = Assert.Throws<ScenarioException>(() => Load(text));

        Assert.Equal(
        [
            "s.yaml:2:7: seed: -1 is out of range; expected an integer from 0 to 18446744073709551615",
            "s.yaml:7:16: hosts[0].frequency: '2400' has no unit; expected a frequency with a unit, e.g. 2.4GHz",
            "s.yaml:11:12: vms[0].vcpus: 0 is out of range; expected an integer from 1 to 64",
            "s.yaml:14:31: expect[0]: '=' is not a comparison; expected '==' (or one of <, <=, >, >=, !=)",
        ], ex.Diagnostics.Select(d => d.ToString()));
        Assert.Equal(string.Join(Environment.NewLine, ex.Diagnostics), ex.Message);
    }

    [Fact]
    public void Malformed_yaml_is_a_diagnostic_at_its_position()
    {
        Assert.Equal("s.yaml:2:13: malformed YAML: while scanning a plain scalar value, found invalid mapping; " +
            "expected one 'key: value' per line (quote a value that contains ': ')",
            Error(Replace(Minimal, "duration:", "duration: 1s: x")));
    }

    [Fact]
    public void Tab_indentation_is_reported_at_the_tab()
    {
        Assert.Equal("s.yaml:5:1: malformed YAML: a tab in the indentation; expected spaces (YAML indents with spaces only)",
            Error(Replace(Minimal, "cpu:", "\tcpu: intel-nehalem")));
    }

    [Fact]
    public void Unclosed_flow_list_is_reported_at_its_bracket()
    {
        Assert.Equal("s.yaml:10:10: malformed YAML: this '[' is not closed; expected ']' after the list's items",
            Error(Replace(Minimal, "host: h0", "    host: h0\n    pin: [0, 1\n    vcpus: 2")));
    }

    [Theory]
    [InlineData("", "s.yaml:1:1: the file holds no YAML document; expected a mapping with at least name, duration, hosts and vms")]
    [InlineData("# only a comment\n", "s.yaml:1:1: the file holds no YAML document; expected a mapping with at least name, duration, hosts and vms")]
    [InlineData("- a\n- b\n", "s.yaml:1:1: expected a mapping of scenario keys (name, duration, hosts, vms, ...), got a list")]
    [InlineData("a: 1\n---\nb: 2\n", "s.yaml:2:1: a second YAML document ('---') was found; expected one scenario per file")]
    [InlineData("name: !!binary x\n", "s.yaml:1:7: YAML tag 'tag:yaml.org,2002:binary' is not supported; expected the value without a tag (only !!str is allowed)")]
    [InlineData("name: *a\n", "s.yaml:1:7: alias '*a' refers to no anchor defined before it; expected '&a' earlier in the file")]
    [InlineData("? [a]\n: b\n", "s.yaml:1:3: a mapping key must be a plain word, got a list; expected 'key: value'")]
    public void Documents_that_are_not_one_mapping_are_rejected(string text, string expected)
    {
        Assert.Equal(expected, Errors(text)[0]);
    }

    [Theory]
    [InlineData("{")]
    [InlineData("[")]
    [InlineData("'")]
    [InlineData("\"abc")]
    [InlineData("a: [1, 2\nb: 3\n")]
    [InlineData("a: {x: 1\n")]
    [InlineData(":")]
    [InlineData("&a")]
    [InlineData("@foo")]
    [InlineData("a: \"\\q\"")]
    [InlineData("a: |\n x\n  y\n z")]
    [InlineData("%YAML 9.9\n---\na: 1\n")]
    [InlineData("--- a\n--- b\n")]
    [InlineData("hosts: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n")]
    [InlineData("name: x\nduration: 1s\nhosts: [1, {id: [2]}, ~]\nvms: [{id: {a: b}, host: [], workload: {}}]\nevents: [1, {at: x, cstate: 1}]\nexpect: [{}]\n")]
    public void Garbage_gives_diagnostics_and_nothing_else(string text)
    {
        var ex = Assert.Throws<ScenarioException>(() => Load(text));

        Assert.All(ex.Diagnostics, d => Assert.True(d.Line >= 1 && d.Column >= 1 && d.Message.Contains("expected", StringComparison.Ordinal), d.ToString()));
    }

    [Fact]
    public void Alias_bomb_is_refused_quickly()
    {
        // "Billion laughs": ten levels of ten aliases stand for 10^10 values. Level k stands for
        // (10^(k+2) - 1) / 9 values; the aliases of lines 2-4 add 12330, each alias of line 5 adds
        // 11111, so its eighth alias (a4, column 45) crosses 100000.
        var lines = new List<string> { "a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]" };
        for (int i = 1; i <= 9; i++)
        {
            string p = $"*a{i - 1}";
            lines.Add($"a{i}: &a{i} [{p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}, {p}]");
        }
        lines.Add("name: *a9");
        var clock = Stopwatch.StartNew();

        string error = Errors(string.Join('\n', lines))[0];

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Equal("s.yaml:5:45: the aliases of this document stand for more than 100000 values once expanded (an alias bomb?); " +
            "expected a plain scenario file (anchors and aliases may only share small parts)", error);
    }

    [Fact]
    public void A_plain_file_with_ten_thousand_events_is_not_an_alias_bomb()
    {
        // 10,000 events of 7 values each: 70,000+ plain values, no alias; only aliases count.
        var text = new System.Text.StringBuilder(Minimal).Append("\nevents:\n");
        for (int i = 1; i <= 10_000; i++)
        {
            text.Append(System.Globalization.CultureInfo.InvariantCulture, $"  - {{ at: {i * 50}us, cpufreq: {{ host: h0, cores: all, frequency: {1 + (i % 2)}GHz }} }}\n");
        }

        var scenario = Load(text.ToString());

        Assert.Equal(10_000, scenario.Events.Count);
    }

    [Fact]
    public void Deep_nesting_is_refused()
    {
        string text = "name: " + new string('[', 200) + new string(']', 200) + "\n";

        Assert.Equal("s.yaml:1:70: mappings and lists nest deeper than 64 levels; expected a flatter document", Errors(text)[0]);
    }

    [Fact]
    public void Missing_file_is_a_diagnostic()
    {
        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.Load("/nonexistent/dir/s.yaml"));

        Assert.Equal("/nonexistent/dir/s.yaml:1:1: cannot read the scenario file '/nonexistent/dir/s.yaml': no such file; expected an existing YAML file",
            Assert.Single(ex.Diagnostics).ToString());
    }
}

public class CpuCompatibilityTests
{
    private const string TwoHosts = """
        name: cpuid
        duration: 1s
        hosts:
          - id: new
            cpu: intel-nehalem
            frequency: 2GHz
          - id: old
            cpu: intel-core2
            frequency: 2GHz
        vms:
          - id: vm0
            host: new
            workload: |
              loop:
                jmp loop
        events:
          - at: 500ms
            live_migrate: { vm: vm0, to: old }
        """;

    [Fact]
    public void A_live_migration_to_a_cpu_without_a_feature_the_guest_was_shown_is_refused()
    {
        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.LoadText(TwoHosts, "s.yaml"));
        string message = string.Join("\n", ex.Diagnostics.Select(d => d.ToString()));
        Assert.Contains("s.yaml:18:34: events[0].live_migrate.to: ", message, StringComparison.Ordinal);
        Assert.Contains("host 'old' lacks RDTSCP", message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_other_way_round_is_allowed()
    {
        var s = ScenarioLoader.LoadText(TwoHosts.Replace("host: new", "host: old", StringComparison.Ordinal).Replace("to: old", "to: new", StringComparison.Ordinal), "s.yaml");
        Assert.Single(s.Events);
    }
}
