using TscSim.Core.Text;

namespace TscSim.Tests.Text;

/// <summary>The one did-you-mean rule: at most max(1, length / 3) edits, case ignored, nearest first, ties in candidate order.</summary>
public class SuggestionsTests
{
    [Theory]
    [InlineData("ab", 1)]
    [InlineData("vray", 1)]
    [InlineData("lopo", 1)]
    [InlineData("smal", 1)]
    [InlineData("sweep", 1)]
    [InlineData("vcpus_", 2)]
    [InlineData("intel-nehalm", 4)]
    public void The_limit_is_one_edit_per_three_characters_and_at_least_one(string word, int limit) =>
        Assert.Equal(limit, Suggestions.Limit(word));

    [Fact]
    public void A_swap_of_two_adjacent_characters_is_one_edit() =>
        Assert.Equal("; did you mean 'vary'? ", Suggestions.DidYouMean("vray", ["name", "base", "vary", "repeat"]));

    [Fact]
    public void A_short_word_two_edits_away_gets_no_hint()
    {
        Assert.Equal(2, Suggestions.Distance("cpu", "vcpus"));
        Assert.Equal("; ", Suggestions.DidYouMean("cpu", ["id", "host", "vcpus"]));
        Assert.Equal("", Suggestions.Hint("cpu", ["id", "host", "vcpus"]));
    }

    [Fact]
    public void Case_is_ignored_and_the_candidate_is_shown_as_written() =>
        Assert.Equal("; did you mean 'loop'?", Suggestions.Hint("LOOP", ["start", "loop"]));

    [Fact]
    public void Nearest_first_then_in_candidate_order() =>
        Assert.Equal(["vm0.vcpu1.reads", "vm0.vcpu0.reads", "vm0.vcpu2.reads"],
            Suggestions.Nearest("vm0.vcpu1.read", ["vm0.vcpu0.reads", "vm0.vcpu2.reads", "vm0.vcpu1.reads"], 3));

    [Fact]
    public void Several_candidates_are_joined_with_or() =>
        Assert.Equal("; did you mean 'h0' or 'h1'?", Suggestions.Hint("h2", ["h0", "h1", "big"], 3));
}
