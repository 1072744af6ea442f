using System.Text.Json.Nodes;
using TscSim.Core.Guest;
using TscSim.Core.Runs;
using TscSim.Core.Scenarios;
using TscSim.Tests.Runs;

namespace TscSim.Tests.Scenarios;

/// <summary>The VM key <c>hpet</c> (QEMU <c>-machine hpet=off</c>): parsing, round trip, the conflict error, and what it changes for a 2.6.18 guest.</summary>
public class VmHpetOptionTests
{
    private static string With(string hpetLine, string guest = "linux-2.6.18") => ScenarioText.OneVm(hpetLine, $"guest: {guest}");

    [Fact]
    public void Hpet_false_removes_the_hpet_from_the_guests_profile_and_round_trips()
    {
        var s = ScenarioLoader.LoadText(With("hpet: false"), "g.yaml");
        Assert.False(s.Vms[0].Hpet);
        Assert.DoesNotContain(s.Vms[0].GuestProfile().Ratings, r => r.Kind == ClocksourceKind.Hpet);
        Assert.Contains(s.Vms[0].Guest.ToProfile().Ratings, r => r.Kind == ClocksourceKind.Hpet); // the profile itself keeps it
        string yaml = ScenarioWriter.ToYaml(s);
        Assert.Contains("hpet: false", yaml, StringComparison.Ordinal);
        Assert.Equal(s, ScenarioLoader.LoadText(yaml, "g.resolved.yaml"));
        var t = ScenarioLoader.LoadText(With("hpet: true"), "g.yaml");
        Assert.True(t.Vms[0].Hpet);
        Assert.Equal(t, ScenarioLoader.LoadText(ScenarioWriter.ToYaml(t), "g.resolved.yaml"));
        var d = ScenarioLoader.LoadText(ScenarioText.OneVm("guest: linux-2.6.18"), "g.yaml");
        Assert.Null(d.Vms[0].Hpet); // as the hypervisor offers
        Assert.Contains(d.Vms[0].GuestProfile(hypervisorOffersHpet: true).Ratings, r => r.Kind == ClocksourceKind.Hpet);
        Assert.DoesNotContain("hpet:", ScenarioWriter.ToYaml(d), StringComparison.Ordinal);
    }

    [Fact]
    public void Hyper_v_offers_no_hpet_and_asking_for_one_is_an_error()
    {
        // Linux Documentation/virt/hyperv/clocks.rst: "Hyper-V does not provide a virtualized HPET in guest VMs."
        Assert.False(TscSim.Core.Virtualization.HypervisorConfig.Find("hyperv")!.OffersHpet);
        Assert.True(TscSim.Core.Virtualization.HypervisorConfig.Find("xen-default")!.OffersHpet);
        var s = ScenarioLoader.LoadText(ScenarioText.OneVm("guest: linux-2.6.18"), "g.yaml", ["hypervisor.policy=hyperv"]);
        Assert.DoesNotContain(s.Vms[0].GuestProfile(s.Hypervisor.ToConfig().OffersHpet).Ratings, r => r.Kind == ClocksourceKind.Hpet);
        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.LoadText(With("hpet: true"), "g.yaml", ["hypervisor.policy=hyperv"]));
        var d = Assert.Single(ex.Diagnostics);
        Assert.Equal(10, d.Line);
        Assert.Contains("offers no HPET", d.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Hpet_false_with_clocksource_hpet_is_an_error_at_its_position()
    {
        var ex = Assert.Throws<ScenarioException>(() =>
            ScenarioLoader.LoadText(With("hpet: false", "{ profile: linux-modern, clocksource: hpet }"), "g.yaml"));
        var d = Assert.Single(ex.Diagnostics);
        Assert.Equal(10, d.Line);
        Assert.Equal(11, d.Column);
        Assert.Contains("guest.clocksource is hpet", d.Message, StringComparison.Ordinal);
        var bad = Assert.Throws<ScenarioException>(() => ScenarioLoader.LoadText(With("hpet: maybe"), "g.yaml"));
        Assert.Equal(10, Assert.Single(bad.Diagnostics).Line);
    }

    [Fact]
    public void Without_an_hpet_the_2618_guest_ticks_from_the_pit_and_catches_the_downtime_up()
    {
        // legacy-guest-to-faster-host: 100 ms downtime. HPET timer 0 (QEMU's virtual clock) loses it;
        // KVM's PIT reinjects the missed ticks and xtime catches up.
        string path = Path.Combine(ShippedScenarioTests.RepoRoot(), "scenarios", "legacy-guest-to-faster-host.yaml");
        var hpet = ScenarioRun.Execute(new ScenarioModel(ScenarioLoader.Load(path)));
        var pit = ScenarioRun.Execute(new ScenarioModel(ScenarioLoader.Load(path, ["vms[0].hpet=false"])));
        JsonNode H(RunResult r) => r.Summary["vms"]![0]!["vcpus"]![0]!;
        Assert.True(H(hpet)["interrupts"]!["hpet"]!.GetValue<long>() > 3_800);
        Assert.Equal(0, H(hpet)["interrupts"]!["pit"]!.GetValue<long>());
        Assert.Equal(0, H(pit)["interrupts"]!["hpet"]!.GetValue<long>());
        Assert.True(H(pit)["interrupts"]!["pit"]!.GetValue<long>() > 3_800);
        Assert.InRange(H(hpet)["skew_ns"]!["final"]!.GetValue<long>(), -100_010_000, -99_990_000);
        Assert.InRange(H(pit)["skew_ns"]!["final"]!.GetValue<long>(), -1_000_000, 1_000_000);
    }
}
