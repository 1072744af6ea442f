using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using TscSim.Core.Guest;
using TscSim.Core.Hardware;
using TscSim.Core.Time;
using TscSim.Core.Virtualization;

namespace TscSim.Core.Scenarios;

/// <summary>
/// Writes a <see cref="Scenario"/> as YAML with every preset and default expanded (the
/// results folder's <c>scenario.resolved.yaml</c>). Quantities are written exactly in units
/// the loader reads back, the workload as a literal block, so loading the text gives a
/// scenario equal to the one written.
/// </summary>
public static partial class ScenarioWriter
{
    [GeneratedRegex("^[A-Za-z0-9][A-Za-z0-9._-]*$")]
    private static partial Regex PlainWord();

    /// <summary>The resolved scenario as YAML text (LF line ends, ending with a newline).</summary>
    public static string ToYaml(Scenario scenario)
    {
        ArgumentNullException.ThrowIfNull(scenario);
        var w = new StringBuilder();
        w.Append("# resolved scenario: every preset and default expanded; loading it again gives the same scenario\n");
        w.Append("name: ").Append(Str(scenario.Name)).Append('\n');
        if (scenario.Description is not null)
        {
            w.Append("description: ").Append(Quoted(scenario.Description)).Append('\n');
        }
        w.Append("seed: ").Append(scenario.Seed.ToString(CultureInfo.InvariantCulture)).Append('\n');
        w.Append("duration: ").Append(scenario.Duration).Append('\n');

        w.Append("hosts:\n");
        foreach (var h in scenario.Hosts)
        {
            w.Append("  - id: ").Append(Str(h.Id)).Append('\n');
            w.Append("    cpu: ").Append(Str(h.Cpu)).Append('\n');
            w.Append("    frequency: ").Append(h.Frequency).Append('\n');
            w.Append("    sockets: ").Append(Int(h.Sockets)).Append('\n');
            w.Append("    cores_per_socket: ").Append(Int(h.CoresPerSocket)).Append('\n');
            w.Append("    uptime: ").Append(h.Uptime).Append('\n');
            w.Append("    exit_cost: ").Append(h.ExitCost).Append('\n');
            w.Append("    tsc: { drift: ").Append(h.Tsc.Drift)
                .Append(", socket_skew: ").Append(h.Tsc.SocketSkew)
                .Append(", constant: ").Append(Bool(h.Tsc.Constant))
                .Append(", nonstop: ").Append(Bool(h.Tsc.Nonstop))
                .Append(", scaling: ").Append(Bool(h.Tsc.Scaling)).Append(" }\n");
        }

        var hv = scenario.Hypervisor;
        w.Append("hypervisor:\n");
        w.Append("  policy: ").Append(Str(hv.Policy)).Append('\n');
        w.Append("  tsc_auto: ").Append(Bool(hv.TscAuto)).Append('\n');
        w.Append("  trapping: ").Append(Trapping(hv.Trapping)).Append('\n');
        w.Append("  notify_guest: ").Append(Bool(hv.NotifyGuest)).Append('\n');
        w.Append("  rdtscp_passthrough: ").Append(Bool(hv.RdtscpPassthrough)).Append('\n');
        w.Append("  tolerance_ppm: ").Append(hv.TolerancePpm.ToString(CultureInfo.InvariantCulture)).Append('\n');
        w.Append("  scaling: ").Append(Bool(hv.Scaling)).Append('\n');
        w.Append("  vmm: ").Append(hv.Vmm == VmmKind.Direct ? "direct" : "qemu").Append('\n');
        if (hv.SchedulerSlice is { } slice)
        {
            w.Append("  scheduler_slice: ").Append(slice).Append('\n');
        }

        w.Append("vms:\n");
        foreach (var vm in scenario.Vms)
        {
            w.Append("  - id: ").Append(Str(vm.Id)).Append('\n');
            w.Append("    host: ").Append(Str(vm.Host)).Append('\n');
            w.Append("    vcpus: ").Append(Int(vm.Vcpus)).Append('\n');
            if (vm.Pin is { } pin)
            {
                w.Append("    pin: ").Append(IntList(pin)).Append('\n');
            }
            if (vm.TscKhz is { } khz)
            {
                w.Append("    tsc_khz: ").Append(khz.ToString(CultureInfo.InvariantCulture)).Append('\n');
            }
            w.Append("    hints: { fixed_rate: ").Append(Bool(vm.Hints.FixedRate))
                .Append(", smp_stable: ").Append(Bool(vm.Hints.SmpStable)).Append(" }\n");
            w.Append("    guest: { profile: ").Append(Str(vm.Guest.Profile));
            if (vm.Guest.Clocksource is { } cs)
            {
                w.Append(", clocksource: ").Append(OsProfiles.NameOf(cs));
            }
            if (!vm.Guest.Kvmclock)
            {
                w.Append(", kvmclock: false");
            }
            if (vm.Guest.Hz is { } hz)
            {
                w.Append(", hz: ").Append(hz.ToString(CultureInfo.InvariantCulture));
            }
            w.Append(" }\n");
            if (vm.Hpet is bool hpet)
            {
                w.Append("    hpet: ").Append(Bool(hpet)).Append('\n');
            }
            w.Append("    start: ").Append(vm.Start).Append('\n');
            w.Append("    workload: ");
            AppendBlock(w, vm.Workload, indent: 6);
        }

        if (scenario.Events.Count > 0)
        {
            w.Append("events:\n");
            foreach (var e in scenario.Events)
            {
                w.Append("  - at: ").Append(e.At).Append('\n');
                w.Append("    ").Append(e.Kind).Append(": { ").Append(EventBody(e)).Append(" }\n");
            }
        }

        if (scenario.Expect.Count > 0)
        {
            w.Append("expect:\n");
            foreach (var x in scenario.Expect)
            {
                w.Append("  - ").Append(Quoted(x.Text)).Append('\n');
            }
        }

        w.Append("measurement:\n");
        w.Append("  reads_csv_max_rows: ").Append(Int(scenario.Measurement.ReadsCsvMaxRows)).Append('\n');
        if (scenario.Measurement.ReadsCsvInterval is { } interval)
        {
            w.Append("  reads_csv_interval: ").Append(interval).Append('\n');
        }
        return w.ToString();
    }

    private static string EventBody(ScenarioEvent e) => e switch
    {
        LiveMigrateEvent lm => $"vm: {Str(lm.Vm)}, to: {Str(lm.To)}, downtime: {lm.Downtime}",
        CpufreqEvent cf => $"host: {Str(cf.Host)}, cores: {Cores(cf.Cores)}, frequency: {cf.Frequency}",
        CstateEvent cs => $"host: {Str(cs.Host)}, cores: {Cores(cs.Cores)}, state: {cs.State}, duration: {cs.Duration}",
        MigrateVcpuEvent mv => $"vm: {Str(mv.Vm)}, vcpu: {Int(mv.Vcpu)}, to_core: {Int(mv.ToCore)}",
        TscWriteEvent tw => $"host: {Str(tw.Host)}, cores: {Cores(tw.Cores)}, value: {tw.Value.ToString(CultureInfo.InvariantCulture)}",
        PolicyEvent p => string.Join(", ", new[]
        {
            p.Trapping is { } t ? $"trapping: {Trapping(t)}" : null,
            p.TscAuto is { } a ? $"tsc_auto: {Bool(a)}" : null,
            p.NotifyGuest is { } n ? $"notify_guest: {Bool(n)}" : null,
        }.Where(s => s is not null)),
        _ => throw new ArgumentException($"unknown event type {e.GetType().Name}", nameof(e)),
    };

    private static string Cores(CoreSelection cores) => cores.Cores is { } list ? IntList(list) : "all";

    private static string IntList(ValueList<int> list) => "[" + string.Join(", ", list.Select(Int)) + "]";

    private static string Int(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Bool(bool value) => value ? "true" : "false";

    private static string Trapping(TrappingOverride t) => t switch
    {
        TrappingOverride.On => "on",
        TrappingOverride.Off => "off",
        _ => "auto",
    };

    /// <summary>A plain word when it reads back as the same string, otherwise double-quoted.</summary>
    private static string Str(string s) =>
        PlainWord().IsMatch(s) && s is not ("null" or "Null" or "NULL" or "true" or "false" or "True" or "False" or "TRUE" or "FALSE")
            ? s
            : Quoted(s);

    /// <summary>A double-quoted YAML string with every special character escaped.</summary>
    private static string Quoted(string s)
    {
        var sb = new StringBuilder(s.Length + 2).Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\0': sb.Append("\\0"); break;
                default:
                    if (char.IsControl(c) || c is '\u0085' or '\u2028' or '\u2029' or '\uFEFF')
                    {
                        sb.Append("\\u").Append(((int)c).ToString("X4", CultureInfo.InvariantCulture));
                    }
                    else
                    {
                        sb.Append(c);
                    }
                    break;
            }
        }
        return sb.Append('"').ToString();
    }

    /// <summary>
    /// Text as a literal block (<c>|</c>, <c>|-</c> or <c>|+</c> for its trailing newlines),
    /// or double-quoted when a block cannot hold it exactly (leading spaces on the first line,
    /// carriage returns, control characters).
    /// </summary>
    private static void AppendBlock(StringBuilder w, string text, int indent)
    {
        // A block holds the text exactly when its first non-empty line starts with a visible
        // character (the indentation is detected from it) and nothing needs an escape.
        string firstContent = text.Split('\n').FirstOrDefault(l => l.Length > 0) ?? "";
        bool blockable = firstContent.Length > 0
            && !char.IsWhiteSpace(firstContent[0])
            && !text.Any(c => c is not ('\n' or '\t') && (char.IsControl(c) || c is '\u0085' or '\u2028' or '\u2029' or '\uFEFF'));
        if (!blockable)
        {
            w.Append(Quoted(text)).Append('\n');
            return;
        }
        // Trailing newlines decide the chomping indicator.
        int trailing = 0;
        while (trailing < text.Length && text[text.Length - 1 - trailing] == '\n')
        {
            trailing++;
        }
        string body = text[..^trailing];
        string header = trailing switch { 0 => "|-", 1 => "|", _ => "|+" };
        w.Append(header).Append('\n');
        string pad = new(' ', indent);
        foreach (string line in body.Split('\n'))
        {
            if (line.Length > 0)
            {
                w.Append(pad).Append(line);
            }
            w.Append('\n');
        }
        for (int i = 1; i < trailing; i++)
        {
            w.Append('\n');
        }
    }
}
