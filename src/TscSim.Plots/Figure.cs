using System.Text;
using System.Text.RegularExpressions;
using ScottPlot;

namespace TscSim.Plots;

/// <summary>
/// What every figure shares: a fixed size, a fixed palette, the legend outside the data area,
/// and saving as PNG and SVG. Files carry no timestamp, and SVG clip-path ids are renumbered per
/// file, so the same data gives the same files on the same machine (fonts differ between machines).
/// </summary>
public static partial class Figure
{
    /// <summary>Width of every figure, pixels.</summary>
    public const int Width = 1000;

    /// <summary>Height of every figure, pixels.</summary>
    public const int Height = 600;

    private static readonly IPalette Palette = new ScottPlot.Palettes.Category10();

    /// <summary>The <paramref name="index"/>-th colour of the figures' palette (Category10, cycling).</summary>
    public static Color ColorAt(int index) => Palette.GetColor(index);

    private static readonly Lazy<string> SansFont = new(() =>
    {
        // ScottPlot's own sans-serif detection does not know DejaVu (Debian's default), so look for it first.
        var installed = new HashSet<string>(SkiaSharp.SKFontManager.Default.FontFamilies, StringComparer.Ordinal);
        return new[] { "DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica" }.FirstOrDefault(installed.Contains) ?? Fonts.Sans;
    });

    /// <summary>The font of every figure: the first installed of DejaVu Sans, Liberation Sans, Noto Sans, Arial, Helvetica, else ScottPlot's sans-serif choice.</summary>
    public static string FontName => SansFont.Value;

    /// <summary>A new plot with the figures' common style (a sans-serif font).</summary>
    public static Plot NewPlot()
    {
        var plot = new Plot();
        plot.Font.Set(FontName);
        return plot;
    }

    /// <summary>Title and axis labels.</summary>
    public static void Label(Plot plot, string title, string xLabel, string yLabel)
    {
        plot.Title(title, 16);
        plot.XLabel(xLabel, 14);
        plot.YLabel(yLabel, 14);
    }

    /// <summary>How series <c>i</c> of a figure is drawn (<see cref="StyleAt"/>).</summary>
    /// <param name="Color">The line and marker colour (<see cref="ColorAt"/>).</param>
    /// <param name="Marker">The marker shape, when the figure draws markers.</param>
    /// <param name="MarkerScale">The marker size relative to the figure's: an open shape drawn after a filled one is larger, so it rings it.</param>
    /// <param name="Pattern">The line pattern.</param>
    /// <param name="PatternName">The pattern's name (<c>solid</c>, <c>dashed</c>, <c>dotted</c>, <c>densely dashed</c>).</param>
    public sealed record SeriesStyle(Color Color, MarkerShape Marker, float MarkerScale, LinePattern Pattern, string PatternName);

    // Only the first shape is filled; the others are open and grow, so that a series drawn later
    // on the same points rings an earlier one instead of covering it. 6 shapes and 4 patterns:
    // the pair repeats after 12 series (the colours after 10).
    private static readonly (MarkerShape Shape, float Scale)[] Shapes =
    [
        (MarkerShape.FilledCircle, 1f),
        (MarkerShape.OpenSquare, 1.7f),
        (MarkerShape.OpenTriangleUp, 2.3f),
        (MarkerShape.OpenDiamond, 2.8f),
        (MarkerShape.Eks, 1.5f),
        (MarkerShape.OpenCircle, 3.3f),
    ];

    private static readonly (LinePattern Pattern, string Name)[] Patterns =
    [
        (LinePattern.Solid, "solid"),
        (LinePattern.Dashed, "dashed"),
        (LinePattern.Dotted, "dotted"),
        (LinePattern.DenselyDashed, "densely dashed"),
    ];

    /// <summary>
    /// The style of the <paramref name="index"/>-th series of a figure: colour, marker shape and
    /// line pattern all change from one series to the next, so a series that lies on top of
    /// another is still told apart by its markers and dashes, also in print without colour.
    /// </summary>
    public static SeriesStyle StyleAt(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        var (shape, scale) = Shapes[index % Shapes.Length];
        var (pattern, name) = Patterns[index % Patterns.Length];
        return new SeriesStyle(ColorAt(index), shape, scale, pattern, name);
    }

    /// <summary>
    /// Draws each series as a line with the <see cref="StyleAt"/> of its position (colour, line
    /// pattern and, when <paramref name="markerSize"/> is above 0, marker shape), with its label in the legend.
    /// </summary>
    public static void Lines(Plot plot, IReadOnlyList<Series> series, ConnectStyle connect = ConnectStyle.Straight, float markerSize = 0)
    {
        for (int i = 0; i < series.Count; i++)
        {
            var s = series[i];
            var style = StyleAt(i);
            var line = plot.Add.Scatter(s.X, s.Y, style.Color);
            line.LegendText = s.Label;
            line.ConnectStyle = connect;
            line.MarkerShape = style.Marker;
            line.MarkerSize = markerSize * style.MarkerScale;
            line.LinePattern = style.Pattern;
            line.LineWidth = 1.5f;
        }
    }

    /// <summary>Shows the legend at the right of the data area (never over the data) when there is anything to list.</summary>
    public static void Legend(Plot plot)
    {
        if (plot.GetPlottables().Any(p => p.LegendItems.Any(item => !string.IsNullOrEmpty(item.LabelText))))
        {
            plot.ShowLegend(Edge.Right);
        }
    }

    /// <summary>Writes <paramref name="message"/> in the middle of an empty figure.</summary>
    public static void NoData(Plot plot, string message)
    {
        plot.Add.Annotation(message, Alignment.MiddleCenter);
    }

    /// <summary>
    /// Saves <paramref name="plot"/> as <c>NAME.png</c> and <c>NAME.svg</c> in <paramref name="dir"/>
    /// (created if needed), each written under a temporary name and then renamed, and returns the two paths.
    /// </summary>
    public static IReadOnlyList<string> Save(Plot plot, string dir, string name)
    {
        ArgumentNullException.ThrowIfNull(plot);
        Directory.CreateDirectory(dir);
        string png = Path.Combine(dir, name + ".png");
        string svg = Path.Combine(dir, name + ".svg");
        WriteAtomically(png, plot.GetImageBytes(Width, Height, ImageFormat.Png));
        WriteAtomically(svg, new UTF8Encoding(false).GetBytes(NormalizeSvg(plot.GetSvgXml(Width, Height))));
        return [png, svg];
    }

    [GeneratedRegex(@"\bcl_([0-9A-Fa-f]+)\b", RegexOptions.CultureInvariant)]
    private static partial Regex ClipId();

    /// <summary>Renumbers the SVG's clip-path ids from 0 in order of appearance (Skia numbers them per process).</summary>
    internal static string NormalizeSvg(string svg)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        return ClipId().Replace(svg, m =>
        {
            if (!ids.TryGetValue(m.Groups[1].Value, out int n))
            {
                n = ids.Count;
                ids[m.Groups[1].Value] = n;
            }
            return "cl_" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        });
    }

    private static void WriteAtomically(string path, byte[] bytes)
    {
        string temp = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "." + Path.GetFileName(path) + ".tmp");
        File.WriteAllBytes(temp, bytes);
        File.Move(temp, path, overwrite: true);
    }
}
