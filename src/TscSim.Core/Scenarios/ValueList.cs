using System.Collections;
using System.Collections.Immutable;
using System.Runtime.CompilerServices;

namespace TscSim.Core.Scenarios;

/// <summary>
/// An immutable list with value equality: two lists are equal when they hold equal items in the
/// same order (unlike <see cref="ImmutableArray{T}"/>, which compares array references). The
/// default value is the empty list. Used for every list in the scenario model so that
/// <see cref="Scenario"/> equality means "says the same thing".
/// </summary>
[CollectionBuilder(typeof(ValueList), nameof(ValueList.Create))]
public readonly struct ValueList<T> : IReadOnlyList<T>, IEquatable<ValueList<T>>
{
    private readonly ImmutableArray<T> _items;

    /// <summary>A list of <paramref name="items"/>.</summary>
    public ValueList(ImmutableArray<T> items) => _items = items;

    /// <summary>The empty list.</summary>
    public static ValueList<T> Empty => default;

    /// <summary>The items (an empty array for the default list).</summary>
    public ImmutableArray<T> Items => _items.IsDefault ? [] : _items;

    /// <inheritdoc/>
    public int Count => _items.IsDefault ? 0 : _items.Length;

    /// <inheritdoc/>
    public T this[int index] => Items[index];

    /// <summary>A struct enumerator over the items.</summary>
    public ImmutableArray<T>.Enumerator GetEnumerator() => Items.GetEnumerator();

    IEnumerator<T> IEnumerable<T>.GetEnumerator() => ((IEnumerable<T>)Items).GetEnumerator();

    IEnumerator IEnumerable.GetEnumerator() => ((IEnumerable)Items).GetEnumerator();

    /// <summary>Item-by-item equality, in order.</summary>
    public bool Equals(ValueList<T> other)
    {
        var a = Items;
        var b = other.Items;
        if (a.Length != b.Length)
        {
            return false;
        }
        var comparer = EqualityComparer<T>.Default;
        for (int i = 0; i < a.Length; i++)
        {
            if (!comparer.Equals(a[i], b[i]))
            {
                return false;
            }
        }
        return true;
    }

    /// <inheritdoc/>
    public override bool Equals(object? obj) => obj is ValueList<T> other && Equals(other);

    /// <inheritdoc/>
    public override int GetHashCode()
    {
        var hash = new HashCode();
        foreach (var item in Items)
        {
            hash.Add(item);
        }
        return hash.ToHashCode();
    }

    /// <summary>Value equality.</summary>
    public static bool operator ==(ValueList<T> left, ValueList<T> right) => left.Equals(right);

    /// <summary>Value inequality.</summary>
    public static bool operator !=(ValueList<T> left, ValueList<T> right) => !left.Equals(right);

    /// <summary>The items, comma separated, in brackets.</summary>
    public override string ToString() => "[" + string.Join(", ", Items) + "]";
}

/// <summary>Builds <see cref="ValueList{T}"/> values (also the target of collection expressions).</summary>
public static class ValueList
{
    /// <summary>A list of <paramref name="items"/>.</summary>
    public static ValueList<T> Create<T>(ReadOnlySpan<T> items) => new([.. items]);

    /// <summary>A list of <paramref name="items"/>.</summary>
    public static ValueList<T> From<T>(IEnumerable<T> items) => new([.. items]);
}
