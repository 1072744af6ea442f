using TscSim.Plots;
using TscSim.Plots.Input;

namespace TscSim.Tests.Plots;

public sealed class PlotInputTests : IDisposable
{
    private readonly TempFolder _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData("2000|200000|2000", true, "", "2000=2000,200000=200000")]
    [InlineData("1GHz|2.5GHz", true, "GHz", "1GHz=1,2.5GHz=2.5")]
    [InlineData("3GHz|500MHz", true, "GHz", "500MHz=0.5,3GHz=3")]   // mixed units: exact conversion to the first value's unit
    [InlineData("250ms|1s", true, "ms", "250ms=250,1s=1000")]
    [InlineData("on|off|auto", false, "", "on=0,off=1,auto=2")]      // words: order of first appearance
    [InlineData("linux-2.6.18|linux-modern", false, "", "linux-2.6.18=0,linux-modern=1")]
    [InlineData("2.6.18|3", false, "", "2.6.18=0,3=1")]               // a version is not a number
    [InlineData("1GHz|5ppm", false, "", "1GHz=0,5ppm=1")]             // different kinds of quantity do not compare
    public void Parameter_values_are_placed_by_number_and_unit_or_as_categories(string values, bool numeric, string unit, string expected)
    {
        var scale = ParameterScale.Of("p", values.Split('|'));
        Assert.Equal(numeric, scale.IsNumeric);
        Assert.Equal(unit, scale.Unit);
        Assert.Equal(unit.Length == 0 ? "p" : $"p ({unit})", scale.Label);
        Assert.Equal(expected, string.Join(",", scale.Values.Select(v => $"{v}={scale.Position(v).ToString(System.Globalization.CultureInfo.InvariantCulture)}")));
    }

    [Fact]
    public void Csv_fields_may_be_quoted_with_commas_quotes_and_line_breaks()
    {
        var t = CsvTable.Parse("a,b,c\r\n1,\"x, \"\"y\"\"\",3\n\"multi\nline\",,z\n", "t.csv");
        Assert.Equal(["a", "b", "c"], t.Header);
        Assert.Equal(["1", "x, \"y\"", "3"], t.Rows[0].Select(f => f.Text));
        Assert.Equal(["multi\nline", "", "z"], t.Rows[1].Select(f => f.Text));
        Assert.Equal((3, 1), (t.Rows[1][0].Line, t.Rows[1][0].Column));
        Assert.Equal((4, 7), (t.Rows[1][1].Line, t.Rows[1][1].Column));
    }

    [Theory]
    [InlineData("a,b\n1,2,3\n", "t.csv:2:1: 3 field(s), expected 2 (a,b)")]
    [InlineData("a,b\n1,\"2\n", "t.csv:2:3: unterminated quoted field")]
    [InlineData("", "t.csv:1:1: empty file: expected a header row")]
    public void Csv_errors_name_file_line_and_column(string text, string expected)
    {
        var ex = Assert.Throws<PlotInputException>(() => CsvTable.Parse(text, "t.csv"));
        Assert.Equal(expected, ex.Message);
    }

    [Fact]
    public void A_non_integer_in_reads_csv_is_reported_at_its_cell()
    {
        string dir = TinyFolders.WriteResults(_dir, "r",
            TinyFolders.Reads.Replace("150000000,vm0,1,1,h0,149999000,-1000,", "150000000,vm0,1,1,h0,149999000,-1k,", StringComparison.Ordinal));
        var ex = Assert.Throws<PlotInputException>(() => ResultsFolder.Load(dir));
        Assert.Equal($"{Path.Combine(dir, "reads.csv")}:3:32: skew_ns '-1k' is not an integer", ex.Message);
    }

    [Fact]
    public void A_missing_column_names_the_expected_columns()
    {
        string dir = TinyFolders.WriteResults(_dir, "r", "true_ns,vm,vcpu\n1,vm0,0\n");
        var ex = Assert.Throws<PlotInputException>(() => ResultsFolder.Load(dir));
        Assert.Contains("reads.csv:1:1: no column 'core' (expected the columns true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles)", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{ \"scenario\": \"x\", ", ":1:")]                                                   // not JSON: position of the error
    [InlineData("{ \"scenario\": \"x\", \"simulated_ns\": 1, \"vms\": [ { \"id\": 3 } ] }", "\"vms[0].id\" is not a string")]
    [InlineData("{ \"scenario\": \"x\", \"vms\": [] }", "\"simulated_ns\" is missing")]
    public void A_malformed_summary_says_where(string json, string expected)
    {
        string dir = TinyFolders.WriteResults(_dir, "s");
        File.WriteAllText(Path.Combine(dir, "summary.json"), json);
        var ex = Assert.Throws<PlotInputException>(() => ResultsFolder.Load(dir));
        Assert.StartsWith(Path.Combine(dir, "summary.json"), ex.Message, StringComparison.Ordinal);
        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_results_folder_without_a_scenario_file_is_reported()
    {
        string dir = TinyFolders.WriteResults(_dir, "noscenario");
        File.Delete(Path.Combine(dir, "scenario.resolved.yaml"));
        var ex = Assert.Throws<PlotInputException>(() => ResultsFolder.Load(dir));
        Assert.StartsWith($"{Path.Combine(dir, "scenario.resolved.yaml")}: missing", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Svg_clip_ids_are_renumbered_from_zero_in_order_of_appearance()
    {
        const string svg = "<clipPath id=\"cl_7\"/><g clip-path=\"url(#cl_7)\"/><clipPath id=\"cl_1a\"/><g clip-path=\"url(#cl_1a)\"/>"; // Skia writes hex
        Assert.Equal("<clipPath id=\"cl_0\"/><g clip-path=\"url(#cl_0)\"/><clipPath id=\"cl_1\"/><g clip-path=\"url(#cl_1)\"/>", Figure.NormalizeSvg(svg));
    }
}
