namespace TscSim.Tests;

/// <summary>
/// One reader for the text-vector files (as Iced keeps its test vectors): a header of comment
/// lines, then cases, each <c>=== title</c>, body lines, and sections opened by
/// <c>--- name</c> whose lines follow. Line numbers are the file's, so a failing case names its
/// data line.
/// </summary>
public static class TextVectors
{
    /// <summary>One case: its title and line, its body, and its sections in file order.</summary>
    public sealed record Block(string Title, int Line, IReadOnlyList<string> Body, IReadOnlyList<Section> Sections)
    {
        /// <summary>The first section whose header starts with <paramref name="name"/>, or null.</summary>
        public Section? Find(string name) => Sections.FirstOrDefault(s => s.Header.StartsWith(name, StringComparison.Ordinal));
    }

    /// <summary>A section: the rest of its <c>---</c> line and its non-blank lines with their file line numbers.</summary>
    public sealed record Section(string Header, int Line, IReadOnlyList<(int Line, string Text)> Lines);

    /// <summary>Reads <paramref name="path"/>; lines before the first <c>===</c> are the header and are skipped.</summary>
    public static IReadOnlyList<Block> Read(string path)
    {
        string[] lines = File.ReadAllLines(path);
        var blocks = new List<Block>();
        string? title = null;
        int titleLine = 0;
        var body = new List<string>();
        var sections = new List<Section>();
        List<(int, string)>? open = null;
        void Flush()
        {
            if (title is not null)
            {
                blocks.Add(new Block(title, titleLine, [.. body], [.. sections]));
            }
            body.Clear();
            sections.Clear();
            open = null;
        }
        for (int n = 0; n < lines.Length; n++)
        {
            string line = lines[n];
            if (line.StartsWith("=== ", StringComparison.Ordinal))
            {
                Flush();
                title = line[4..].Trim();
                titleLine = n + 1;
            }
            else if (title is null)
            {
                continue;
            }
            else if (line.StartsWith("--- ", StringComparison.Ordinal))
            {
                open = [];
                sections.Add(new Section(line[4..].Trim(), n + 1, open));
            }
            else if (open is not null)
            {
                if (line.Trim().Length > 0)
                {
                    open.Add((n + 1, line));
                }
            }
            else
            {
                body.Add(line);
            }
        }
        Flush();
        return blocks;
    }
}
