using TscSim.Core.Guest;
using TscSim.Core.Scenarios;

namespace TscSim.Tests.Scenarios;

public class GuestOptionTests
{
    private static string With(string guest) => ScenarioText.OneVm($"guest: {guest}");

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

    [Fact]
    public void Hz_selects_the_tick_rate_of_the_2618_x86_64_kernel_and_round_trips()
    {
        var s = ScenarioLoader.LoadText(With("{ profile: linux-2.6.18-x86_64, hz: 250 }"), "g.yaml");
        Assert.Equal(250, s.Vms[0].Guest.Hz);
        Assert.Equal(250, s.Vms[0].Guest.ToProfile().Hz);
        string yaml = ScenarioWriter.ToYaml(s);
        Assert.Contains("hz: 250", yaml, StringComparison.Ordinal);
        Assert.Equal(s, ScenarioLoader.LoadText(yaml, "g.resolved.yaml"));
        // Default 1000; the alias names the same kernel.
        var alias = ScenarioLoader.LoadText(With("linux-2.6.18"), "g.yaml").Vms[0].Guest.ToProfile();
        Assert.Equal("linux-2.6.18-x86_64", alias.Name);
        Assert.Equal(1000, alias.Hz);
        Assert.Equal(TimekeepingKind.Tick2618X64, alias.Timekeeping);
    }

    [Theory]
    [InlineData("{ profile: linux-2.6.18, hz: 300 }", "300 is not a tick rate of linux-2.6.18; expected one of 1000, 250, 100")]
    [InlineData("{ profile: linux-modern, hz: 500 }", "500 is not a tick rate of linux-modern; expected one of 1000, 300, 250, 100")]
    [InlineData("{ profile: windows-2016, hz: 1000 }", "the windows-2016 profile has no selectable tick rate")]
    [InlineData("{ profile: linux-2.6.18-x86_64, hz: fast }", "expected a tick rate in Hz from 1 to 10000")]
    public void A_bad_hz_is_an_error_at_its_position(string guest, string message)
    {
        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.LoadText(With(guest), "g.yaml"));
        var d = Assert.Single(ex.Diagnostics);
        Assert.Equal(10, d.Line);
        Assert.Contains(message, d.Message, StringComparison.Ordinal);
    }
}
