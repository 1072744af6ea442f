using TscSim.Core.Guest;
using TscSim.Core.Scenarios;

namespace TscSim.Tests.Scenarios;

public class GuestOptionTests
{
    private static string With(string guest) => $$"""
        name: g
        duration: 1s
        hosts:
          - id: h
            cpu: intel-nehalem
            frequency: 2GHz
        vms:
          - id: vm0
            host: h
            guest: {{guest}}
            workload: hlt
        """;

    [Fact]
    public void Kvmclock_false_removes_kvm_clock_from_the_profile_and_round_trips()
    {
        var s = ScenarioLoader.LoadText(With("{ profile: linux-modern, kvmclock: false }"), "g.yaml");
        Assert.False(s.Vms[0].Guest.Kvmclock);
        var profile = s.Vms[0].Guest.ToProfile();
        Assert.DoesNotContain(profile.Ratings, r => r.Kind == ClocksourceKind.KvmClock);
        Assert.Equal(ClocksourceKind.Tsc, profile.Preferred);
        string yaml = ScenarioWriter.ToYaml(s);
        Assert.Contains("kvmclock: false", yaml, StringComparison.Ordinal);
        Assert.Equal(s, ScenarioLoader.LoadText(yaml, "g.resolved.yaml"));
    }

    [Fact]
    public void Kvmclock_defaults_to_true()
    {
        var s = ScenarioLoader.LoadText(With("linux-modern"), "g.yaml");
        Assert.True(s.Vms[0].Guest.Kvmclock);
        Assert.Equal(ClocksourceKind.KvmClock, s.Vms[0].Guest.ToProfile().Preferred);
        Assert.DoesNotContain("kvmclock", ScenarioWriter.ToYaml(s), StringComparison.Ordinal);
    }

    [Fact]
    public void Kvmclock_false_with_clocksource_kvm_clock_is_an_error_at_its_position()
    {
        var ex = Assert.Throws<ScenarioException>(() =>
            ScenarioLoader.LoadText(With("{ profile: linux-modern, clocksource: kvm-clock, kvmclock: false }"), "g.yaml"));
        var d = Assert.Single(ex.Diagnostics);
        Assert.Equal(10, d.Line);
        Assert.Contains("contradicts clocksource: kvm-clock", d.Message, StringComparison.Ordinal);
    }
}
