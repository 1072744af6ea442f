using System.Globalization;
using TscSim.Core.Hardware;
using TscSim.Core.Virtualization;

namespace TscSim.Cli;

/// <summary><c>tscsim presets</c>: every preset with its parameters and sources.</summary>
internal static class Presets
{
    public static int Run(TextWriter output)
    {
        output.WriteLine("CPU models (hosts: cpu: NAME)");
        foreach (var m in CpuPresets.All)
        {
            output.WriteLine();
            output.WriteLine($"  {m.Name}: {m.Description}");
            string stops = m.NonstopTsc ? "never" : $"from {m.TscStopsFrom}";
            output.WriteLine(
                $"    vendor {m.Vendor.ToString().ToLowerInvariant()}, constant_tsc {Yes(m.ConstantTsc)}, " +
                $"nonstop_tsc {Yes(m.NonstopTsc)} (TSC stops: {stops}), invariant {Yes(m.InvariantTsc)}, " +
                $"scaling {ScalingName(m.Scaling)}, tsc_adjust {Yes(m.HasTscAdjust)}, rdtscp {Yes(m.HasRdtscp)}, rdpid {Yes(m.HasRdpid)}, " +
                $"tsc_write {(m.FullWidthTscWrite ? "64" : "32")}-bit, exit_round_trip {m.ExitRoundTrip}");
            string costs = string.Join(", ", Enum.GetValues<CostClass>().Select(c =>
                string.Create(CultureInfo.InvariantCulture, $"{c.ToString().ToLowerInvariant()} {m.Cost(c).Count}")));
            output.WriteLine($"    costs (cycles): {costs}");
            output.WriteLine($"    sources: {m.Sources}");
        }
        output.WriteLine();
        output.WriteLine("Guest OS profiles (vms: guest: NAME, or { profile: NAME, clocksource: tsc|kvm-clock|hpet|acpi_pm, hz: N })");
        foreach (var (alias, name) in TscSim.Core.Guest.OsProfiles.Aliases)
        {
            output.WriteLine($"  {alias} is {name} (most 2011 RHEL5/CentOS5 guests were x86_64; the i386 kernel is linux-2.6.18-i386)");
        }
        foreach (var g in TscSim.Core.Guest.OsProfiles.All)
        {
            output.WriteLine();
            output.WriteLine($"  {g.Name}: {g.Description}");
            output.WriteLine($"    clocksources: {string.Join(", ", g.Ratings.Select(r => $"{TscSim.Core.Guest.OsProfiles.NameOf(r.Kind)} {r.Rating}"))}"
                + (g.KvmclockRatingWithInvariantTsc is int low ? $" (kvm-clock {low} with an invariant TSC)" : ""));
            output.WriteLine($"    calibration: {g.Calibration}; warp test: {(g.WarpTest ? "yes" : "no")}; watchdog: {g.Watchdog}; "
                + $"honours STABLE: {(g.HonoursStableFlag ? "yes" : "no")}; reacts to notify_guest: {(g.ReactsToNotification ? $"yes, after {g.NotificationDelay}" : "no")}; "
                + $"registers for Hyper-V re-enlightenment: {(g.RegistersReenlightenment ? $"yes, answers after {g.NotificationDelay}" : "no")}");
            output.WriteLine($"    tick: {g.Tick}"
                + (!g.HzChoices.IsEmpty ? $"; hz: {string.Join(", ", g.HzChoices)} (default {g.Hz})" : g.Hz > 0 ? $"; hz: {g.Hz} (fixed)" : ""));
            output.WriteLine($"    timekeeping: {(g.Timekeeping == TscSim.Core.Guest.TimekeepingKind.Tick2618X64 ? "tick-driven xtime (2.6.18 x86_64 vxtime)" : "clocksource accumulation")}");
            output.WriteLine($"    sources: {g.Source}");
        }
        output.WriteLine();
        output.WriteLine("Hypervisor policy presets (hypervisor: policy: NAME)");
        foreach (var p in HypervisorConfig.Presets)
        {
            output.WriteLine();
            output.WriteLine($"  {p.Preset}: {HypervisorConfig.Describe(p.Kind)}");
            output.WriteLine($"    traps by itself: {HypervisorConfig.TrapsWhen(p.Kind)}");
            // The preset's own values of the keys its policy reads (tsc_auto only for kvm-2011).
            output.WriteLine($"    parameters: {string.Join(", ", p.Parameters().Select(kv => kv is ("trapping", "auto")
                ? "trapping: auto (no override: the policy decides)" : $"{kv.Key}: {kv.Value}"))}");
            var h = p.HandlerCosts;
            output.WriteLine(
                $"    exit handler costs: rdtsc emulation {h.RdtscEmulation}, cpuid {h.Cpuid}, msr {h.Msr}, hlt {h.Hlt}, userspace I/O {h.UserspaceIo}"
                + (p.EmulatedRdtscNativeMultiple is int m ? $"; emulated rdtsc/rdtscp in total {m}x the native instruction" : ""));
            output.WriteLine($"    cost sources: {p.CostSource}");
        }
        return ExitCodes.Success;
    }

    private static string Yes(bool b) => b ? "yes" : "no";

    internal static string ScalingName(TscScaling s) => s switch
    {
        TscScaling.None => "none",
        TscScaling.VmxMultiplier16_48 => "vmx-16.48",
        TscScaling.SvmRatio8_32 => "svm-8.32",
        _ => throw new ArgumentOutOfRangeException(nameof(s), s, null),
    };
}
