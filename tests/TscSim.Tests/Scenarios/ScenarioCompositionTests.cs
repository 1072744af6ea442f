using TscSim.Core.Guest;
using TscSim.Core.Scenarios;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;
using static TscSim.Tests.Scenarios.ScenarioText;

namespace TscSim.Tests.Scenarios;

/// <summary><c>extends</c> (base files merged mapping by mapping) and <c>--set</c> overrides.</summary>
public sealed class ScenarioCompositionTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("tscsim-scenarios-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Write(string name, string text)
    {
        string path = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }

    private const string Base = """
        name: base
        duration: 10s
        hosts:
          - id: h0
            cpu: intel-nehalem
            frequency: 2GHz
        hypervisor:
          policy: xen-default
          tolerance_ppm: 100
        vms:
          - id: vm0
            host: h0
            workload: |
              hlt
        """;

    [Fact]
    public void Extends_merges_mappings_key_by_key_and_replaces_lists()
    {
        Write("base.yaml", Base);
        string child = Write("sub/child.yaml", """
            extends: ../base.yaml
            name: child
            hypervisor:
              trapping: on
            hosts:
              - id: h1
                cpu: amd-zen2
                frequency: 3GHz
            vms:
              - id: vm0
                host: h1
                workload: hlt
            """);

        var s = ScenarioLoader.Load(child);

        Assert.Equal("child", s.Name);
        Assert.Equal(Duration.FromSeconds(10), s.Duration);
        Assert.Equal(("xen-default", 100L, TrappingOverride.On), (s.Hypervisor.Policy, s.Hypervisor.TolerancePpm, s.Hypervisor.Trapping));
        Assert.Equal(["h1"], s.Hosts.Select(h => h.Id));
        Assert.Equal(Path.Combine(_dir, "sub", "child.yaml"), s.Hosts[0].Position.File);
    }

    [Fact]
    public void Extends_chain_applies_every_level_and_null_unsets_a_base_value()
    {
        Write("base.yaml", Base);
        Write("middle.yaml", "extends: base.yaml\nseed: 5\nhypervisor: { tolerance_ppm: 200 }\n");
        string top = Write("top.yaml", "extends: middle.yaml\nname: top\nhypervisor: { tolerance_ppm: ~ }\n");

        var s = ScenarioLoader.Load(top);

        Assert.Equal(("top", 5UL, "xen-default"), (s.Name, s.Seed, s.Hypervisor.Policy));
        Assert.Equal(HypervisorConfig.Find("xen-default")!.TolerancePpm, s.Hypervisor.TolerancePpm);
    }

    [Fact]
    public void Errors_in_a_base_file_name_the_base_file()
    {
        string basePath = Write("base.yaml", Base.Replace("duration: 10s", "duration: 10", StringComparison.Ordinal));
        string child = Write("child.yaml", "extends: base.yaml\nname: child\n");

        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.Load(child));

        Assert.Equal($"{basePath}:2:11: duration: '10' has no unit; expected a duration with a unit, e.g. 20s", Assert.Single(ex.Diagnostics).ToString());
    }

    [Fact]
    public void Extends_cycle_is_an_error()
    {
        string a = Write("a.yaml", "extends: b.yaml\n" + Base);
        string b = Write("b.yaml", "name: b\nextends: a.yaml\n");

        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.Load(a));

        Assert.Equal($"{b}:2:10: extends: cycle a.yaml -> b.yaml -> a.yaml; expected a chain of base files that ends",
            Assert.Single(ex.Diagnostics).ToString());
    }

    [Fact]
    public void A_file_extending_itself_is_a_cycle()
    {
        string a = Write("a.yaml", "extends: a.yaml\n" + Base);

        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.Load(a));

        Assert.Equal($"{a}:1:10: extends: cycle a.yaml -> a.yaml; expected a chain of base files that ends", Assert.Single(ex.Diagnostics).ToString());
    }

    [Fact]
    public void Missing_base_file_is_an_error_at_the_extends_value()
    {
        string a = Write("a.yaml", "extends: nope.yaml\nname: a\n");

        var ex = Assert.Throws<ScenarioException>(() => ScenarioLoader.Load(a));

        Assert.Equal($"{a}:1:10: extends: cannot read the base file '{Path.Combine(_dir, "nope.yaml")}': no such file; " +
            "expected an existing YAML file (a path relative to the file that extends it)", Assert.Single(ex.Diagnostics).ToString());
    }

    [Fact]
    public void Set_overrides_values_and_creates_missing_mappings()
    {
        var s = Load(Minimal, "hypervisor.trapping=on", "vms[0].vcpus=2", "vms[0].pin=[1, 0]", "seed=7", "duration=5s",
            "vms[0].guest={ profile: linux-2.6.18, clocksource: tsc }", "hosts[0].tsc.drift=-2.5ppm");

        Assert.Equal(TrappingOverride.On, s.Hypervisor.Trapping);
        Assert.Equal("kvm-2011", s.Hypervisor.Policy);
        Assert.Equal(2, s.Vms[0].Vcpus);
        Assert.Equal([1, 0], s.Vms[0].Pin!.Value);
        Assert.Equal(7UL, s.Seed);
        Assert.Equal(Duration.FromSeconds(5), s.Duration);
        Assert.Equal(new GuestSpec { Profile = "linux-2.6.18", Clocksource = ClocksourceKind.Tsc }, s.Vms[0].Guest);
        Assert.Equal(-2_500L, s.Hosts[0].Tsc.Drift.PartsPerBillion);
    }

    [Fact]
    public void Later_set_wins_and_an_empty_value_restores_the_default()
    {
        var s = Load(Full, "seed=3", "seed=9", "vms[0].tsc_khz=", "hosts[0].exit_cost=");

        Assert.Equal(9UL, s.Seed);
        Assert.Null(s.Vms[0].TscKhz);
        Assert.Equal(1_000L, s.Hosts[0].ExitCost.Count); // the preset's, no longer the file's 1200
    }

    [Fact]
    public void Set_applies_after_extends_and_keeps_values_written_in_the_files()
    {
        Write("base.yaml", Base);
        string child = Write("child.yaml", "extends: base.yaml\nseed: 2\n");

        var s = ScenarioLoader.Load(child, ["seed=4", "hypervisor.policy=kvm-modern"]);

        // The base wrote tolerance_ppm: 100; a new policy preset fills only what no file wrote.
        Assert.Equal((4UL, "kvm-modern", 100L, true), (s.Seed, s.Hypervisor.Policy, s.Hypervisor.TolerancePpm, s.Hypervisor.TscAuto));
    }

    [Theory]
    [InlineData("seed", "--set seed:1:1: 'seed' has no '='; expected path=value, e.g. hypervisor.trapping=on")]
    [InlineData("=4", "--set =4:1:1: the path before '=' is empty; expected keys separated by '.' with [index] for list items, e.g. vms[0].vcpus=4")]
    [InlineData("vms[3].vcpus=1", "--set vms[3].vcpus=1:1:4: 'vms' has 1 item, so [3] does not exist; expected an index from 0 to 0")]
    [InlineData("vms[x].vcpus=1", "--set vms[x].vcpus=1:1:5: 'x' is not a list index; expected a whole number from 0 in [ ]")]
    [InlineData("vms..vcpus=1", "--set vms..vcpus=1:1:5: unexpected '.' in the path; expected keys separated by '.' with [index] for list items, e.g. vms[0].vcpus=4")]
    [InlineData("name.first=x", "--set name.first=x:1:6: 'name' is 'minimal', not a mapping, so it has no key 'first'; " +
        "expected a path of mapping keys and [index] list items, e.g. vms[0].vcpus")]
    [InlineData("hosts.cpu=amd-k8", "--set hosts.cpu=amd-k8:1:7: 'hosts' is a list, not a mapping, so it has no key 'cpu'; " +
        "expected a path of mapping keys and [index] list items, e.g. vms[0].vcpus")]
    [InlineData("seed[0]=1", "--set seed[0]=1:1:5: 'seed' is not given, not a list, so [0] selects nothing; expected a path to an existing list item")]
    [InlineData("vms[0].vcpu=4", "--set vms[0].vcpu=4:1:8: unknown key 'vcpu' in vms[0]; did you mean 'vcpus'? " +
        "expected one of: id, host, vcpus, pin, tsc_khz, hints, guest, hpet, workload, start")]
    [InlineData("vms[0].vcpus=abc", "--set vms[0].vcpus=abc:1:14: vms[0].vcpus: expected an integer from 1 to 64, got 'abc'")]
    [InlineData("vms[0].pin=[0, 1", "--set vms[0].pin=[0, 1:1:12: malformed YAML: this '[' is not closed; expected ']' after the list's items")]
    public void Bad_set_is_an_error_naming_the_set(string set, string expected)
    {
        Assert.Equal(expected, Error(Minimal, set));
    }

    [Fact]
    public void Set_errors_and_file_errors_are_reported_together()
    {
        var errors = Errors(Replace(Minimal, "duration:", "duration: 10"), "vms[0].vcpus=0");

        Assert.Equal(
        [
            "--set vms[0].vcpus=0:1:14: vms[0].vcpus: 0 is out of range; expected an integer from 1 to 64",
            "s.yaml:2:11: duration: '10' has no unit; expected a duration with a unit, e.g. 20s",
        ], errors);
    }
}
