using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace TscSim.Core.Scenarios;

/// <summary>A node of a parsed YAML document with the position it starts at.</summary>
/// <remarks>
/// Our own small tree instead of YamlDotNet's representation model: it keeps what error
/// messages and workload mapping need (positions, scalar style, the content position of block
/// scalars), and aliases are shared subtrees whose expanded size is counted while parsing, so
/// an alias bomb is refused before anything is expanded.
/// </remarks>
internal abstract class YNode(SourcePosition position)
{
    public SourcePosition Position { get; } = position;

    /// <summary>Nodes this one stands for with every alias expanded (saturates above the budget).</summary>
    public long ExpandedSize { get; set; } = 1;

    /// <summary>What the node is, for messages: "a mapping", "a list", "'text'".</summary>
    public abstract string Describe();
}

/// <summary>A scalar. <see cref="IsString"/>: quoted, block or tagged <c>!!str</c> (never null, never a number).</summary>
internal sealed class YScalar(SourcePosition position, string value, bool isString, bool isBlock, SourcePosition contentPosition,
    bool isFolded = false)
    : YNode(position)
{
    public string Value { get; } = value;

    public bool IsString { get; } = isString;

    /// <summary>A literal or folded block scalar (<c>|</c>, <c>&gt;</c>).</summary>
    public bool IsBlock { get; } = isBlock;

    /// <summary>A folded block scalar (<c>&gt;</c>): its lines were joined.</summary>
    public bool IsFolded { get; } = isFolded;

    /// <summary>Where line 1, column 1 of <see cref="Value"/> is in the file.</summary>
    public SourcePosition ContentPosition { get; } = contentPosition;

    /// <summary>A plain <c>~</c>, <c>null</c> or empty value: "not given".</summary>
    public bool IsNull => !IsString && Value is "" or "~" or "null" or "Null" or "NULL";

    public override string Describe()
    {
        if (IsNull)
        {
            return "no value";
        }
        string shown = Value.Length > 40 ? Value[..37] + "..." : Value;
        shown = shown.Replace("\n", "\\n", StringComparison.Ordinal);
        return $"'{shown}'";
    }
}

/// <summary>A mapping; keys are scalars, unique, in file order.</summary>
internal sealed class YMap(SourcePosition position, List<KeyValuePair<YScalar, YNode>> entries) : YNode(position)
{
    public List<KeyValuePair<YScalar, YNode>> Entries { get; } = entries;

    public YNode? Get(string key)
    {
        foreach (var (k, v) in Entries)
        {
            if (k.Value == key)
            {
                return v;
            }
        }
        return null;
    }

    public YScalar? KeyNode(string key) => Entries.FirstOrDefault(e => e.Key.Value == key).Key;

    public override string Describe() => "a mapping";
}

/// <summary>A sequence.</summary>
internal sealed class YSeq(SourcePosition position, List<YNode> items) : YNode(position)
{
    public List<YNode> Items { get; } = items;

    public override string Describe() => "a list";
}

/// <summary>Builds a <see cref="YNode"/> tree from YamlDotNet's parser events.</summary>
internal static class YamlTree
{
    /// <summary>A document's aliases may stand for at most this many nodes once expanded (plain nodes do not count).</summary>
    public const long MaxExpandedNodes = 100_000;

    /// <summary>Deepest nesting of mappings and lists.</summary>
    public const int MaxDepth = 64;

    private const string StrTag = "tag:yaml.org,2002:str";

    private sealed class Frame(YNode node, string? anchor, bool flow)
    {
        public YNode Node { get; } = node;

        /// <summary>Written in brackets (<c>[...]</c>, <c>{...}</c>) rather than by indentation.</summary>
        public bool Flow { get; } = flow;

        /// <summary>The collection's anchor, registered when it is complete (an alias inside it cannot refer to it).</summary>
        public string? Anchor { get; } = anchor;

        public YScalar? PendingKey { get; set; }

        public Dictionary<string, YScalar> Keys { get; } = new(StringComparer.Ordinal);
    }

    private sealed class AbortParse : Exception;

    /// <summary>
    /// Parses <paramref name="text"/> (one YAML document). Returns the root, or null after
    /// adding diagnostics (malformed YAML, an empty file, an alias bomb). Never throws for bad input.
    /// </summary>
    public static YNode? Parse(string text, string file, List<ScenarioDiagnostic> diagnostics, bool allowEmpty = false)
    {
        var lines = text.Split('\n');
        var anchors = new Dictionary<string, YNode>(StringComparer.Ordinal);
        var stack = new List<Frame>();
        YNode? root = null;
        int documents = 0;
        long aliased = 0; // values added by expanding aliases, saturating above the budget
        Mark last = Mark.Empty;

        SourcePosition At(Mark m) => new(file, Math.Max(1, (int)m.Line), Math.Max(1, (int)m.Column));

        void Fail(SourcePosition pos, string message)
        {
            diagnostics.Add(ScenarioDiagnostic.At(pos, message));
            throw new AbortParse();
        }

        void Complete(YNode node, SourcePosition where)
        {
            if (stack.Count == 0)
            {
                root = node;
                return;
            }
            var frame = stack[^1];
            frame.Node.ExpandedSize = Math.Min(MaxExpandedNodes + 1, frame.Node.ExpandedSize + node.ExpandedSize);
            switch (frame.Node)
            {
                case YSeq seq:
                    seq.Items.Add(node);
                    break;
                case YMap when frame.PendingKey is null:
                    if (node is not YScalar key || key.IsBlock)
                    {
                        Fail(node.Position, $"a mapping key must be a plain word, got {node.Describe()}; expected 'key: value'");
                        return;
                    }
                    frame.PendingKey = key;
                    break;
                case YMap map:
                    var k = frame.PendingKey!;
                    frame.PendingKey = null;
                    if (frame.Keys.TryGetValue(k.Value, out var first))
                    {
                        diagnostics.Add(ScenarioDiagnostic.At(k.Position,
                            $"duplicate key '{k.Value}' (first given at line {first.Position.Line}); expected each key once per mapping"));
                        return;
                    }
                    frame.Keys[k.Value] = k;
                    map.Entries.Add(new(k, node));
                    break;
            }
        }

        void CheckTag(NodeEvent e)
        {
            if (!e.Tag.IsEmpty && !e.Tag.IsNonSpecific && e.Tag.Value != StrTag)
            {
                Fail(At(e.Start), $"YAML tag '{e.Tag.Value}' is not supported; expected the value without a tag (only !!str is allowed)");
            }
        }

        void Open(NodeEvent e, YNode node, bool flow)
        {
            CheckTag(e);
            if (stack.Count >= MaxDepth)
            {
                Fail(At(e.Start), $"mappings and lists nest deeper than {MaxDepth} levels; expected a flatter document");
            }
            stack.Add(new Frame(node, e.Anchor.IsEmpty ? null : e.Anchor.Value, flow));
        }

        try
        {
            var parser = new Parser(new StringReader(text));
            while (parser.MoveNext())
            {
                var ev = parser.Current!;
                last = ev.End;
                switch (ev)
                {
                    case DocumentStart ds:
                        if (documents > 0)
                        {
                            Fail(At(ds.Start), "a second YAML document ('---') was found; expected one scenario per file");
                        }
                        documents++;
                        break;
                    case Scalar s:
                    {
                        CheckTag(s);
                        bool block = s.Style is ScalarStyle.Literal or ScalarStyle.Folded;
                        bool isString = s.Style != ScalarStyle.Plain || (!s.Tag.IsEmpty && !s.Tag.IsNonSpecific && s.Tag.Value == StrTag);
                        var node = new YScalar(At(s.Start), s.Value, isString, block, ContentPosition(s, lines, file),
                            s.Style == ScalarStyle.Folded);
                        if (!s.Anchor.IsEmpty)
                        {
                            anchors[s.Anchor.Value] = node;
                        }
                        Complete(node, node.Position);
                        break;
                    }
                    case AnchorAlias a:
                        if (!anchors.TryGetValue(a.Value.Value, out var target))
                        {
                            Fail(At(a.Start), $"alias '*{a.Value.Value}' refers to no anchor defined before it; expected '&{a.Value.Value}' earlier in the file");
                        }
                        // Only what aliases add counts against the budget: a long plain file is fine.
                        aliased = Math.Min(MaxExpandedNodes + 1, aliased + target!.ExpandedSize);
                        if (aliased > MaxExpandedNodes)
                        {
                            Fail(At(a.Start), $"the aliases of this document stand for more than {MaxExpandedNodes} values once expanded " +
                                "(an alias bomb?); expected a plain scenario file (anchors and aliases may only share small parts)");
                        }
                        Complete(target, At(a.Start));
                        break;
                    case MappingStart ms:
                        Open(ms, new YMap(At(ms.Start), []), ms.Style == MappingStyle.Flow);
                        break;
                    case SequenceStart ss:
                        Open(ss, new YSeq(At(ss.Start), []), ss.Style == SequenceStyle.Flow);
                        break;
                    case MappingEnd or SequenceEnd:
                    {
                        var frame = stack[^1];
                        stack.RemoveAt(stack.Count - 1);
                        if (frame.Anchor is not null)
                        {
                            anchors[frame.Anchor] = frame.Node;
                        }
                        Complete(frame.Node, frame.Node.Position);
                        break;
                    }
                }
            }
        }
        catch (AbortParse)
        {
            return null;
        }
        catch (YamlException ex) when (ex.Message.Contains("flow", StringComparison.OrdinalIgnoreCase) && UnclosedFlow(stack) is { } unclosed)
        {
            diagnostics.Add(unclosed);
            return null;
        }
        catch (YamlException ex)
        {
            var (pos, message) = DescribeYamlError(ex, lines, file);
            diagnostics.Add(ScenarioDiagnostic.At(pos, message));
            return null;
        }
        catch (Exception ex) when (ex is InvalidOperationException or ArgumentException or FormatException or OverflowException
            && ex.TargetSite?.DeclaringType?.Assembly == typeof(Parser).Assembly)
        {
            // YamlDotNet throws InvalidOperationException for some truncated flow collections.
            diagnostics.Add(UnclosedFlow(stack) ?? ScenarioDiagnostic.At(At(last),
                "malformed YAML after this point (an unclosed bracket or quote?); expected a complete YAML document"));
            return null;
        }

        if (root is null && !allowEmpty)
        {
            diagnostics.Add(new ScenarioDiagnostic(file, 1, 1,
                "the file holds no YAML document; expected a mapping with at least name, duration, hosts and vms"));
        }
        return root;
    }

    /// <summary>The innermost '[' or '{' still open, as a diagnostic at the bracket, or null.</summary>
    private static ScenarioDiagnostic? UnclosedFlow(List<Frame> stack) => stack.LastOrDefault(f => f.Flow) is { } open
        ? ScenarioDiagnostic.At(open.Node.Position, open.Node is YSeq
            ? "malformed YAML: this '[' is not closed; expected ']' after the list's items"
            : "malformed YAML: this '{' is not closed; expected '}' after the mapping's entries")
        : null;

    /// <summary>Where line 1, column 1 of a scalar's value is in the file.</summary>
    private static SourcePosition ContentPosition(Scalar s, string[] lines, string file)
    {
        int line = (int)s.Start.Line;
        int column = (int)s.Start.Column;
        switch (s.Style)
        {
            case ScalarStyle.SingleQuoted or ScalarStyle.DoubleQuoted:
                return new SourcePosition(file, line, column + 1);
            case ScalarStyle.Literal or ScalarStyle.Folded:
            {
                // Value line 1 is the line after the header ('|', '|-', '|2', ...); the content
                // column is found from the first non-empty value line and its source line.
                var valueLines = s.Value.Split('\n');
                for (int k = 0; k < valueLines.Length; k++)
                {
                    if (valueLines[k].Length == 0 || line + k >= lines.Length)
                    {
                        continue;
                    }
                    string source = lines[line + k].TrimEnd('\r');
                    int indent = s.Style == ScalarStyle.Literal && source.EndsWith(valueLines[k], StringComparison.Ordinal)
                        ? source.Length - valueLines[k].Length
                        : source.Length - source.TrimStart(' ').Length;
                    return new SourcePosition(file, line + 1, indent + 1);
                }
                return new SourcePosition(file, line + 1, 1);
            }
            default:
                return new SourcePosition(file, line, column);
        }
    }

    private static (SourcePosition Position, string Message) DescribeYamlError(YamlException ex, string[] lines, string file)
    {
        string what = ex.InnerException is { Message.Length: > 0 } inner ? inner.Message : ex.Message;
        what = what.TrimEnd('.');
        var pos = new SourcePosition(file, Math.Max(1, (int)ex.Start.Line), Math.Max(1, (int)ex.Start.Column));
        if (what.Contains("tab", StringComparison.OrdinalIgnoreCase))
        {
            for (int i = 0; i < lines.Length; i++)
            {
                int tab = lines[i].IndexOf('\t', StringComparison.Ordinal);
                if (tab >= 0 && lines[i][..tab].Trim().Length == 0)
                {
                    return (new SourcePosition(file, i + 1, tab + 1),
                        "malformed YAML: a tab in the indentation; expected spaces (YAML indents with spaces only)");
                }
            }
        }
        string hint = what.Contains("found invalid mapping", StringComparison.OrdinalIgnoreCase)
            || what.Contains("mapping values are not allowed", StringComparison.OrdinalIgnoreCase)
            ? "expected one 'key: value' per line (quote a value that contains ': ')"
            : what.Contains("did not find expected", StringComparison.OrdinalIgnoreCase)
            ? "expected matching brackets, quotes and indentation"
            : "expected well-formed YAML (key: value pairs, '- ' list items, indentation with spaces)";
        string first = what.Length > 0 ? char.ToLowerInvariant(what[0]) + what[1..] : "unreadable input";
        return (pos, $"malformed YAML: {first}; {hint}");
    }
}
