using System.Numerics;

namespace TscSim.Tests.Time;

/// <summary>
/// Checks the comparison and equality laws of a value type in one call (after NodaTime's
/// TestHelper): a value equals an equal value and is less than a greater value,
/// through every operator and interface.
/// </summary>
internal static class Laws
{
    public static void Comparison<T>(T value, T equalValue, T greaterValue)
        where T : struct, IEquatable<T>, IComparable<T>, IComparisonOperators<T, T, bool>
    {
        Equality(value, equalValue, greaterValue);
        Assert.True(value.CompareTo(equalValue) == 0, "CompareTo equal");
        Assert.True(value.CompareTo(greaterValue) < 0, "CompareTo less");
        Assert.True(greaterValue.CompareTo(value) > 0, "CompareTo greater");
        Assert.True(value < greaterValue, "<");
        Assert.False(greaterValue < value, "< reversed");
        Assert.False(value < equalValue, "< equal");
        Assert.True(value <= equalValue, "<= equal");
        Assert.True(value <= greaterValue, "<=");
        Assert.False(greaterValue <= value, "<= reversed");
        Assert.True(greaterValue > value, ">");
        Assert.False(value > equalValue, "> equal");
        Assert.True(value >= equalValue, ">= equal");
        Assert.False(value >= greaterValue, ">= reversed");
    }

    public static void Equality<T>(T value, T equalValue, T unequalValue)
        where T : struct, IEquatable<T>, IEqualityOperators<T, T, bool>
    {
        Assert.True(value.Equals(equalValue), "Equals");
        Assert.True(value.Equals((object)equalValue), "Equals(object)");
        Assert.False(value.Equals(unequalValue), "Equals unequal");
        Assert.False(value.Equals((object)unequalValue), "Equals(object) unequal");
        Assert.False(value.Equals(null), "Equals(null)");
        Assert.Equal(value.GetHashCode(), equalValue.GetHashCode());
        Assert.True(value == equalValue, "==");
        Assert.False(value == unequalValue, "== unequal");
        Assert.True(value != unequalValue, "!=");
        Assert.False(value != equalValue, "!= equal");
    }
}
