using static TscSim.Tests.Scenarios.ScenarioText;

namespace TscSim.Tests.Scenarios;

/// <summary>Event validation: references, ranges, and what depends on where a VM is at that instant.</summary>
public class ScenarioEventTests
{
    private static string WithEvents(string events) => TwoHosts + "\nevents:\n" + events;

    [Fact]
    public void Vcpu_move_is_checked_against_the_host_the_vm_is_on_at_that_time()
    {
        // Core 3 exists on 'big' (4 cores) but not on 'small' (2 cores); the VM moves to 'small' at 10s.
        string text = WithEvents("""
              - at: 10s
                live_migrate: { vm: vm0, to: small }
              - at: 12s
                migrate_vcpu: { vm: vm0, vcpu: 0, to_core: 3 }
              - at: 5s
                migrate_vcpu: { vm: vm0, vcpu: 1, to_core: 3 }
            """);

        Assert.Equal("s.yaml:23:48: events[1].migrate_vcpu.to_core: 3 is not a core of host 'small', where VM 'vm0' is at 12s " +
            "(since the live migration at 10s); expected a core index from 0 to 1", Error(text));
    }

    [Fact]
    public void Live_migration_and_vcpu_move_at_the_same_time_apply_in_file_order()
    {
        string before = WithEvents("""
              - at: 10s
                migrate_vcpu: { vm: vm0, vcpu: 0, to_core: 3 }
              - at: 10s
                live_migrate: { vm: vm0, to: small }
            """);
        string after = WithEvents("""
              - at: 10s
                live_migrate: { vm: vm0, to: small }
              - at: 10s
                migrate_vcpu: { vm: vm0, vcpu: 0, to_core: 3 }
            """);

        Assert.Equal(2, Load(before).Events.Count);
        Assert.Contains("3 is not a core of host 'small'", Error(after), StringComparison.Ordinal);
    }

    [Fact]
    public void Live_migration_to_the_host_the_vm_is_on_is_rejected()
    {
        string text = WithEvents("""
              - at: 5s
                live_migrate: { vm: vm0, to: small }
              - at: 8s
                live_migrate: { vm: vm0, to: small }
            """);

        Assert.Equal("s.yaml:23:34: events[1].live_migrate.to: VM 'vm0' is already on host 'small' at 8s (since the live migration at 5s); " +
            "expected a different host", Error(text));
    }

    [Fact]
    public void Event_on_a_vm_before_it_starts_is_rejected()
    {
        string text = WithEvents("""
              - at: 500ms
                migrate_vcpu: { vm: vm0, vcpu: 0, to_core: 1 }
            """);

        Assert.Equal("s.yaml:20:5: events[0]: VM 'vm0' starts at 1s, after this event at 500ms; expected an event at or after the VM's start", Error(text));
    }

    [Theory]
    [InlineData("- at: 30s\n  policy: { trapping: on }",
        "s.yaml:20:9: events[0].at: 30s is out of range; expected a duration from 0s to the scenario's duration")]
    [InlineData("- at: 5\n  policy: { trapping: on }",
        "s.yaml:20:9: events[0].at: '5' has no unit; expected a duration with a unit, e.g. 5s")]
    [InlineData("- at: 5s\n  live_migrat: { vm: vm0, to: small }",
        "s.yaml:21:5: unknown key 'live_migrat' in events[0]; did you mean 'live_migrate'? expected one of: at, live_migrate, cpufreq, cstate, migrate_vcpu, tsc_write, policy")]
    [InlineData("- at: 5s",
        "s.yaml:20:5: events[0]: no event kind given; expected exactly one of: live_migrate, cpufreq, cstate, migrate_vcpu, tsc_write, policy")]
    [InlineData("- at: 5s\n  policy: { trapping: on }\n  cpufreq: { host: big, frequency: 1GHz }",
        "s.yaml:22:5: events[0]: 'policy' and 'cpufreq' in one event; expected exactly one event kind per list item (write two events with the same 'at')")]
    [InlineData("- at: 5s\n  policy: {}",
        "s.yaml:21:13: events[0].policy: nothing to change; expected at least one of: trapping, tsc_auto, notify_guest")]
    [InlineData("- at: 5s\n  policy: { trapping: maybe }",
        "s.yaml:21:25: events[0].policy.trapping: unknown trapping override 'maybe'; expected one of: auto, on, off")]
    [InlineData("- at: 5s\n  migrate_vcpu: { vm: vm0, vcpu: 2, to_core: 0 }",
        "s.yaml:21:36: events[0].migrate_vcpu.vcpu: 2 is out of range; expected a vCPU index of VM 'vm0' from 0 to 1")]
    [InlineData("- at: 5s\n  migrate_vcpu: { vm: vm1, vcpu: 0, to_core: 0 }",
        "s.yaml:21:25: events[0].migrate_vcpu.vm: no VM has the id 'vm1'; did you mean 'vm0'? expected one of: vm0")]
    [InlineData("- at: 5s\n  cpufreq: { host: small, cores: [1, 2], frequency: 1GHz }",
        "s.yaml:21:40: events[0].cpufreq.cores[1]: 2 is out of range; expected a core index of host 'small' from 0 to 1")]
    [InlineData("- at: 5s\n  cpufreq: { host: small, cores: [1, 1], frequency: 1GHz }",
        "s.yaml:21:40: events[0].cpufreq.cores[1]: core 1 is listed twice; expected each core once")]
    [InlineData("- at: 5s\n  cpufreq: { host: small, cores: some, frequency: 1GHz }",
        "s.yaml:21:36: events[0].cpufreq.cores: expected 'all' or a list of core indices such as [0, 1], got 'some'")]
    [InlineData("- at: 5s\n  cstate: { host: big, state: C2, duration: 1ms }",
        "s.yaml:21:33: events[0].cstate.state: unknown C-state 'C2'; did you mean 'C1'? expected one of: C1, C1E, C3, C6")]
    [InlineData("- at: 5s\n  cstate: { host: big, state: C6 }",
        "s.yaml:21:13: events[0].cstate: missing required key 'duration'; expected how long the cores stay in the state, e.g. duration: 50ms")]
    [InlineData("- at: 5s\n  tsc_write: { host: big, value: -1 }",
        "s.yaml:21:36: events[0].tsc_write.value: -1 is out of range; expected an integer from 0 to 18446744073709551615 (decimal, or hex with 0x)")]
    [InlineData("- at: 5s\n  live_migrate: { vm: vm0, to: smal }",
        "s.yaml:21:34: events[0].live_migrate.to: no host has the id 'smal'; did you mean 'small'? expected one of: big, small")]
    public void Bad_events_are_reported_at_the_offending_value(string events, string expected)
    {
        string indented = string.Join('\n', events.Split('\n').Select(l => "  " + l));

        Assert.Equal(expected, Error(WithEvents(indented)));
    }

    [Fact]
    public void Events_must_be_a_list_of_mappings()
    {
        Assert.Equal("s.yaml:19:9: events: expected a list of events ('- at: 5s' items, each with one event kind), got a mapping",
            Error(TwoHosts + "\nevents: { at: 5s }"));
    }
}
