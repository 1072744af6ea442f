using TscSim.Cli;
using TscSim.Core.Virtualization;

namespace TscSim.Tests.Cli;

/// <summary><c>tscsim presets</c> shows each policy preset's own behaviour and parameters, not one line shared by all.</summary>
public class PresetsCliTests
{
    /// <summary>The lines of the policy preset <paramref name="name"/> in the output of <c>presets</c>.</summary>
    private static List<string> Block(string name)
    {
        var o = new StringWriter();
        Assert.Equal(ExitCodes.Success, TscSimCli.Run(["presets"], o, new StringWriter()));
        var lines = o.ToString().Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        int policies = lines.FindIndex(l => l.StartsWith("Hypervisor policy presets", StringComparison.Ordinal));
        int start = lines.FindIndex(policies, l => l.StartsWith($"  {name}: ", StringComparison.Ordinal));
        Assert.True(start > policies, $"no block for {name}");
        return lines.Skip(start).TakeWhile(l => l.Length > 0).ToList();
    }

    [Theory]
    [InlineData("kvm-2011", "traps by itself: when tsc_khz is outside tolerance_ppm", "parameters: tsc_auto: true, trapping: auto (no override: the policy decides), notify_guest: false, rdtscp_passthrough: false, tolerance_ppm: 250, scaling: true")]
    [InlineData("kvm-modern", "traps by itself: never", "parameters: trapping: auto (no override: the policy decides), notify_guest: false, rdtscp_passthrough: false, tolerance_ppm: 250, scaling: true, vmm: qemu")]
    [InlineData("xen-always-emulate", "traps by itself: always", "parameters: trapping: auto (no override: the policy decides), notify_guest: false, rdtscp_passthrough: false, tolerance_ppm: 0, scaling: true")]
    [InlineData("xen-native", "traps by itself: never", "parameters: trapping: auto (no override: the policy decides), notify_guest: false, rdtscp_passthrough: false, tolerance_ppm: 0, scaling: true")]
    [InlineData("hyperv", "traps by itself: after a migration that changes the TSC rate", "parameters: trapping: auto (no override: the policy decides), notify_guest: false, rdtscp_passthrough: false, tolerance_ppm: 250, scaling: true")]
    public void Each_policy_preset_shows_when_it_traps_and_its_own_parameters(string preset, string traps, string parameters)
    {
        var block = Block(preset);
        Assert.Contains(block, l => l.Trim().StartsWith(traps, StringComparison.Ordinal));
        Assert.Contains(block, l => l.Trim() == parameters);
    }

    [Fact]
    public void Only_kvm_2011_lists_tsc_auto_which_no_other_policy_reads()
    {
        foreach (var p in HypervisorConfig.Presets)
        {
            bool listed = Block(p.Preset).Any(l => l.Contains("tsc_auto: ", StringComparison.Ordinal));
            Assert.Equal(p.Kind == PolicyKind.Kvm2011, listed);
        }
    }

    [Fact]
    public void The_2618_profiles_state_their_tick_and_the_alias()
    {
        var o = new StringWriter();
        Assert.Equal(ExitCodes.Success, TscSimCli.Run(["presets"], o, new StringWriter()));
        string text = o.ToString();
        Assert.Contains("linux-2.6.18 is linux-2.6.18-x86_64 (most 2011 RHEL5/CentOS5 guests were x86_64", text, StringComparison.Ordinal);
        Assert.Contains("upstream Kconfig.hz default was 250", text, StringComparison.Ordinal);
        Assert.Contains("; hz: 1000, 250, 100 (default 1000)", text, StringComparison.Ordinal);
        Assert.Contains("timekeeping: tick-driven xtime (2.6.18 x86_64 vxtime)", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Each_policy_preset_names_the_sources_of_its_exit_costs_or_marks_them_assumptions()
    {
        foreach (var p in HypervisorConfig.Presets)
        {
            string line = Block(p.Preset).Single(l => l.Trim().StartsWith("cost sources: ", StringComparison.Ordinal));
            string expected = p.Kind switch
            {
                PolicyKind.XenDefault or PolicyKind.XenAlwaysEmulate or PolicyKind.XenNative => "docs/misc/tscmode.txt",
                PolicyKind.HyperV => "ASSUMPTION",
                _ => "SplitX",
            };
            Assert.Contains(expected, line, StringComparison.Ordinal);
        }
        Assert.Contains(Block("xen-always-emulate"), l => l.Contains("emulated rdtsc/rdtscp in total 18x the native instruction", StringComparison.Ordinal));
    }
}
