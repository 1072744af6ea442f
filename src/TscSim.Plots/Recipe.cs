using ScottPlot;

namespace TscSim.Plots;

/// <summary>A line of a figure: points (X[i], Y[i]) in the figure's units, under a legend label.</summary>
/// <param name="Label">Legend text.</param>
/// <param name="X">X values, in the figure's x unit.</param>
/// <param name="Y">Y values, in the figure's y unit, as many as <paramref name="X"/>.</param>
public sealed record Series(string Label, double[] X, double[] Y);

/// <summary>A labelled instant on a time axis (a vertical line).</summary>
/// <param name="X">The instant, in the figure's x unit.</param>
/// <param name="Label">What happened.</param>
public sealed record Marker(double X, string Label);

/// <summary>A labelled interval on a time axis (a shaded span).</summary>
/// <param name="From">Start, in the figure's x unit.</param>
/// <param name="To">End, in the figure's x unit.</param>
/// <param name="Label">What the interval is.</param>
public sealed record Span(double From, double To, string Label);

/// <summary>One figure drawn from a source (a results folder or a sweep), by name.</summary>
/// <typeparam name="TSource">What the figure is drawn from.</typeparam>
public interface IRecipe<in TSource>
{
    /// <summary>File name stem of the figure, e.g. <c>skew-over-time</c>.</summary>
    string Name { get; }

    /// <summary>One sentence saying what the figure shows and how its data is derived.</summary>
    string Description { get; }

    /// <summary>A new plot of <paramref name="source"/> (with a note in the middle when it has no data); the caller disposes it.</summary>
    Plot Draw(TSource source);

    /// <summary>
    /// A new plot of <paramref name="source"/>, or null when the figure would have no data, with
    /// <paramref name="noData"/> saying why (e.g. "no clock reads in reads.csv"). The caller disposes the plot.
    /// </summary>
    Plot? TryDraw(TSource source, out string? noData);
}

/// <summary>
/// A figure as a small recipe (after ScottPlot's cookbook): <see cref="Extract"/> turns the source
/// into plain series that tests can check, <see cref="Render"/> draws them; <see cref="Draw"/> does both.
/// </summary>
/// <typeparam name="TSource">What the figure is drawn from.</typeparam>
/// <typeparam name="TData">The plain data behind the figure.</typeparam>
public abstract class Recipe<TSource, TData> : IRecipe<TSource>
{
    /// <inheritdoc/>
    public abstract string Name { get; }

    /// <inheritdoc/>
    public abstract string Description { get; }

    /// <summary>The data behind the figure, in the units it is drawn in.</summary>
    public abstract TData Extract(TSource source);

    /// <summary>Why <paramref name="data"/> has nothing to draw (one phrase, e.g. "no VM exits in exits.csv"), or null when it has.</summary>
    public abstract string? NoData(TData data);

    /// <summary>
    /// Draws <paramref name="data"/> on <paramref name="plot"/>: lines, labels, title, legend, and
    /// the <see cref="NoData"/> reason in the middle when there is nothing to draw.
    /// </summary>
    public abstract void Render(Plot plot, TData data);

    /// <inheritdoc/>
    public Plot Draw(TSource source)
    {
        var plot = Figure.NewPlot();
        Render(plot, Extract(source));
        return plot;
    }

    /// <inheritdoc/>
    public Plot? TryDraw(TSource source, out string? noData)
    {
        TData data = Extract(source);
        noData = NoData(data);
        if (noData is not null)
        {
            return null;
        }
        var plot = Figure.NewPlot();
        Render(plot, data);
        return plot;
    }
}
