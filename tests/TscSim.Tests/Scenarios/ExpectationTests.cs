using TscSim.Core.Scenarios;

namespace TscSim.Tests.Scenarios;

/// <summary>Expectations: grammar, unit conversion into the field's unit, evaluation and its failures.</summary>
public class ExpectationTests
{
    private static readonly SourcePosition At = new("s.yaml", 7, 5);

    private static Expectation Parse(string text) => Expectation.Parse(text, At);

    private static string ParseError(string text)
    {
        Assert.False(Expectation.TryParse(text, At, out _, out var diagnostic));
        return diagnostic!.ToString();
    }

    [Theory]
    [InlineData("vm0.vcpu0.skew_ns.max_abs < 200ms", "vm0.vcpu0.skew_ns.max_abs", ExpectOp.Less, 200_000_000.0, "ms")]
    [InlineData("vm0.vcpu0.skew_ns.max_abs<=1.5us", "vm0.vcpu0.skew_ns.max_abs", ExpectOp.LessOrEqual, 1_500.0, "us")]
    [InlineData("vm0.vcpu0.worst_backstep_ns > 250ps", "vm0.vcpu0.worst_backstep_ns", ExpectOp.Greater, 0.25, "ps")]
    [InlineData("simulated_ns >= 2s", "simulated_ns", ExpectOp.GreaterOrEqual, 2_000_000_000.0, "s")]
    [InlineData("vm0.vcpu0.skew_ns.mean > -3 ms", "vm0.vcpu0.skew_ns.mean", ExpectOp.Greater, -3_000_000.0, "ms")]
    [InlineData("vm0.vcpu0.skew_ns.p99 < 1_000", "vm0.vcpu0.skew_ns.p99", ExpectOp.Less, 1_000.0, null)]
    [InlineData("vm0.vcpu0.drift_ppm != 5ppm", "vm0.vcpu0.drift_ppm", ExpectOp.NotEqual, 5.0, "ppm")]
    [InlineData("vm0.vcpu0.drift_ppm <= -250ppb", "vm0.vcpu0.drift_ppm", ExpectOp.LessOrEqual, -0.25, "ppb")]
    [InlineData("vm0.vcpu0.overhead_pct < 2.5%", "vm0.vcpu0.overhead_pct", ExpectOp.Less, 2.5, "%")]
    [InlineData("vm0.vcpu0.read_cycles.p50 < 100cycles", "vm0.vcpu0.read_cycles.p50", ExpectOp.Less, 100.0, "cycles")]
    [InlineData("vm0.vcpu1.exits.rdtsc == 0", "vm0.vcpu1.exits.rdtsc", ExpectOp.Equal, 0.0, null)]
    [InlineData("  vm0.cross_vcpu.violations   ==   +0  ", "vm0.cross_vcpu.violations", ExpectOp.Equal, 0.0, null)]
    public void Numbers_are_converted_into_the_fields_unit(string text, string path, ExpectOp op, double value, string? unit)
    {
        var e = Parse(text);

        Assert.Equal((path, op, value, unit), (e.Path, e.Op, e.Literal.Number!.Value, e.Unit));
        Assert.Equal(text.Trim(), e.Text);
    }

    [Theory]
    [InlineData("vm0.clocksource == hpet", "hpet", ExpectOp.Equal)]
    [InlineData("vm0.clocksource != kvm-clock", "kvm-clock", ExpectOp.NotEqual)]
    [InlineData("vm0.clocksource == \"acpi_pm\"", "acpi_pm", ExpectOp.Equal)]
    [InlineData("vm0.note == 'two words'", "two words", ExpectOp.Equal)]
    public void Words_and_quoted_text_compare_as_strings(string text, string word, ExpectOp op)
    {
        var e = Parse(text);

        Assert.Equal((word, op), (e.Literal.Text, e.Op));
        Assert.Null(e.Literal.Number);
    }

    [Theory]
    [InlineData("", "s.yaml:7:5: empty expectation; expected PATH OP VALUE, e.g. 'vm0.vcpu0.skew_ns.max_abs < 200ms' or 'vm0.clocksource == hpet'")]
    [InlineData("< 5", "s.yaml:7:5: unexpected '<' where a result path should start; expected PATH OP VALUE, e.g. 'vm0.vcpu0.skew_ns.max_abs < 200ms' or 'vm0.clocksource == hpet'")]
    [InlineData("vm0..x < 5", "s.yaml:7:5: 'vm0..x' is not a result path (segments separated by single dots); expected PATH OP VALUE, e.g. 'vm0.vcpu0.skew_ns.max_abs < 200ms' or 'vm0.clocksource == hpet'")]
    [InlineData("vm0.x", "s.yaml:7:10: missing a comparison after 'vm0.x'; expected one of <, <=, >, >=, ==, != and a value")]
    [InlineData("vm0.x = 1", "s.yaml:7:11: '=' is not a comparison; expected '==' (or one of <, <=, >, >=, !=)")]
    [InlineData("vm0 x < 1", "s.yaml:7:9: unexpected 'x' after 'vm0'; expected one of <, <=, >, >=, ==, != (a path has no spaces)")]
    [InlineData("vm0.x <", "s.yaml:7:12: missing a value after '<'; expected a number, a number with a unit (200ms) or a word")]
    [InlineData("vm0.skew_ns < 200xs", "s.yaml:7:22: 'xs' is not a unit of 'vm0.skew_ns' (a time, kept in ns); expected one of ps, ns, us, µs, μs, ms, s, min, h or a plain number")]
    [InlineData("vm0.skew_ns < 5ppm", "s.yaml:7:20: 'ppm' is not a unit of 'vm0.skew_ns' (a time, kept in ns); expected one of ps, ns, us, µs, μs, ms, s, min, h or a plain number")]
    [InlineData("vm0.overhead_pct < 5ms", "s.yaml:7:25: 'ms' is not a unit of 'vm0.overhead_pct' (a percentage, kept in %); expected one of % or a plain number")]
    [InlineData("vm0.cross_vcpu.violations < 5ms", "s.yaml:7:34: 'vm0.cross_vcpu.violations' is a plain count, so 'ms' does not apply; expected a number without a unit (fields ending in _ns, _ppm, _pct or _cycles take units)")]
    [InlineData("vm0.x < 1e9", "s.yaml:7:14: exponents are not supported ('1e9'); expected the digits written out")]
    [InlineData("vm0.x < 1 2", "s.yaml:7:15: unexpected text '2' after the number; expected a unit or the end of the expectation")]
    [InlineData("vm0.clocksource < hpet", "s.yaml:7:21: a word can only be compared with == or !=; expected a number after '<'")]
    [InlineData("vm0.clocksource == \"hpet", "s.yaml:7:24: unterminated quoted text; expected a closing \"")]
    [InlineData("vm0.clocksource == \"hpet\" x", "s.yaml:7:30: unexpected text after the closing \"; expected the end of the expectation")]
    [InlineData("vm0.clocksource == two words", "s.yaml:7:27: unexpected ' ' in the word 'two words'; expected letters, digits, '_', '.', ':' or '-' (quote other text)")]
    [InlineData("vm0.x == 1__0", "s.yaml:7:14: '1__0' is not a number; expected digits with an optional sign, '.' and unit, e.g. -1.5, 200ms, 5ppm")]
    [InlineData("vm0.x == 99999999999999999999999999999999", "s.yaml:7:14: '99999999999999999999999999999999' is out of range; expected at most 28 significant digits")]
    [InlineData("vm0.x == #", "s.yaml:7:14: unexpected '#'; expected a number, a number with a unit (200ms) or a word")]
    public void Malformed_expectations_point_at_the_offending_character(string text, string expected)
    {
        Assert.Equal(expected, ParseError(text));
    }

    [Fact]
    public void Parse_throws_a_scenario_exception_with_the_diagnostic()
    {
        var ex = Assert.Throws<ScenarioException>(() => Parse("vm0.x = 1"));

        Assert.Equal(11, Assert.Single(ex.Diagnostics).Column);
    }

    [Theory]
    [InlineData("vm0.vcpu0.skew_ns.max_abs < 200ms", 199_999_999.0, true)]
    [InlineData("vm0.vcpu0.skew_ns.max_abs < 200ms", 200_000_000.0, false)]
    [InlineData("vm0.vcpu0.skew_ns.max_abs <= 200ms", 200_000_000.0, true)]
    [InlineData("vm0.vcpu0.skew_ns.max_abs > 200ms", 200_000_000.0, false)]
    [InlineData("vm0.vcpu0.skew_ns.max_abs >= 200ms", 200_000_000.0, true)]
    [InlineData("vm0.vcpu0.skew_ns.max_abs == 0.5", 0.5, true)]
    [InlineData("vm0.vcpu0.skew_ns.max_abs != 0.5", 0.5, false)]
    [InlineData("vm0.vcpu0.skew_ns.max_abs < 1s", double.NaN, false)]
    [InlineData("vm0.vcpu0.skew_ns.max_abs != 1s", double.NaN, false)]
    public void Numeric_comparisons_hold_as_the_operator_says(string text, double actual, bool passed)
    {
        var result = Parse(text).Evaluate(p => p == "vm0.vcpu0.skew_ns.max_abs" ? actual : null);

        Assert.Equal(passed, result.Passed);
        Assert.Equal(actual, result.Value!.Number);
    }

    [Fact]
    public void Results_say_what_was_found_and_expected()
    {
        var failed = Parse("vm0.cross_vcpu.violations == 0").Evaluate(_ => 3);
        var held = Parse("vm0.vcpu0.skew_ns.max_abs < 200ms").Evaluate(_ => 1_500);
        var missed = Parse("vm0.vcpu0.skew_ns.max_abs < 200ms").Evaluate(_ => 300_000_000);

        Assert.Equal("vm0.cross_vcpu.violations == 0: vm0.cross_vcpu.violations is 3; expected == 0", failed.Message);
        Assert.Equal("vm0.vcpu0.skew_ns.max_abs < 200ms: vm0.vcpu0.skew_ns.max_abs is 1500 ns", held.Message);
        Assert.True(held.Passed);
        Assert.Equal("vm0.vcpu0.skew_ns.max_abs < 200ms: vm0.vcpu0.skew_ns.max_abs is 300000000 ns; expected < 200000000 ns", missed.Message);
    }

    [Fact]
    public void Word_comparisons_are_exact()
    {
        var e = Parse("vm0.clocksource == hpet");

        Assert.True(e.Evaluate(_ => "hpet").Passed);
        Assert.False(e.Evaluate(_ => "HPET").Passed);
        Assert.True(Parse("vm0.clocksource != hpet").Evaluate(_ => "tsc").Passed);
    }

    [Fact]
    public void Comparing_a_word_with_a_number_fails_with_a_message()
    {
        var wordField = Parse("vm0.clocksource == 3").Evaluate(_ => "tsc");
        var numberField = Parse("vm0.reads == many").Evaluate(_ => 10);

        Assert.False(wordField.Passed);
        Assert.Equal("vm0.clocksource == 3: 'vm0.clocksource' is the word 'tsc', not a number; expected == 3", wordField.Message);
        Assert.False(numberField.Passed);
        Assert.Equal("vm0.reads == many: 'vm0.reads' is the number 10, not a word; expected == many", numberField.Message);
    }

    [Fact]
    public void Unknown_path_fails_and_suggests_nearby_paths()
    {
        string[] known = ["vm0.vcpu0.skew_ns.max_abs", "vm0.vcpu1.skew_ns.max_abs", "vm0.cross_vcpu.violations"];
        var e = Parse("vm0.vcpu0.skw_ns.max_abs < 1ms");

        var withPaths = e.Evaluate(_ => null, known);
        var farAway = Parse("vm9.nothing.here < 1").Evaluate(_ => null, known);
        var noPaths = e.Evaluate(_ => null);

        Assert.False(withPaths.Passed);
        Assert.Null(withPaths.Value);
        Assert.Equal("vm0.vcpu0.skw_ns.max_abs < 1ms: no result is named 'vm0.vcpu0.skw_ns.max_abs'; " +
            "did you mean 'vm0.vcpu0.skew_ns.max_abs' or 'vm0.vcpu1.skew_ns.max_abs'?", withPaths.Message);
        Assert.Equal("vm9.nothing.here < 1: no result is named 'vm9.nothing.here'; expected a path of summary.json such as vm0.vcpu0.skew_ns.max_abs",
            farAway.Message);
        Assert.Equal("vm0.vcpu0.skw_ns.max_abs < 1ms: no result is named 'vm0.vcpu0.skw_ns.max_abs'", noPaths.Message);
        Assert.False(noPaths.Passed);
    }

    [Fact]
    public void Field_unit_follows_the_last_suffixed_segment()
    {
        Assert.Equal("ns", Expectation.FieldUnitOf("vm0.vcpu0.skew_ns.max_abs"));
        Assert.Equal("cycles", Expectation.FieldUnitOf("vm0.vcpu0.read_cycles.p99"));
        Assert.Equal("ppm", Expectation.FieldUnitOf("vm0.vcpu0.drift_ppm"));
        Assert.Equal("%", Expectation.FieldUnitOf("vm0.vcpu0.overhead_pct"));
        Assert.Null(Expectation.FieldUnitOf("vm0.vcpu0.exits.rdtsc"));
    }

    [Fact]
    public void Expectation_errors_in_a_file_point_into_the_expectation()
    {
        string text = ScenarioText.Minimal + "\nexpect:\n  - \"vm0.skew_ns < 5ppm\"\n";

        Assert.Equal("s.yaml:14:21: expect[0]: 'ppm' is not a unit of 'vm0.skew_ns' (a time, kept in ns); expected one of ps, ns, us, µs, μs, ms, s, min, h or a plain number",
            ScenarioText.Error(text));
    }
}
