using System.Globalization;
using System.Text;

namespace TscSim.Plots.Input;

/// <summary>One field of a CSV file with where it starts (1-based line and column).</summary>
internal readonly record struct CsvField(string Text, int Line, int Column);

/// <summary>
/// A CSV file read whole: a header row and data rows (RFC 4180 quoting: <c>"a, b"</c>, <c>""</c>
/// for a quote, line breaks inside quotes). Numbers are read with the invariant culture. Every
/// error names the file, line and column.
/// </summary>
internal sealed class CsvTable
{
    private readonly Dictionary<string, int> _columns;

    private CsvTable(string file, IReadOnlyList<string> header, IReadOnlyList<CsvField[]> rows)
    {
        File = file;
        Header = header;
        Rows = rows;
        _columns = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < header.Count; i++)
        {
            _columns.TryAdd(header[i], i);
        }
    }

    /// <summary>The file's path as given (used in messages).</summary>
    public string File { get; }

    /// <summary>Column names, in file order.</summary>
    public IReadOnlyList<string> Header { get; }

    /// <summary>Data rows; each has exactly <see cref="Header"/>.Count fields.</summary>
    public IReadOnlyList<CsvField[]> Rows { get; }

    /// <summary>Reads <paramref name="path"/>; a missing file, an empty file or a row of the wrong width is an error.</summary>
    public static CsvTable Read(string path)
    {
        string text;
        try
        {
            text = System.IO.File.ReadAllText(path, Encoding.UTF8);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new PlotInputException($"{path}: cannot be read: {ex.Message}", ex);
        }
        return Parse(text, path);
    }

    /// <summary>Parses <paramref name="text"/>, naming it <paramref name="file"/> in messages.</summary>
    public static CsvTable Parse(string text, string file)
    {
        var records = Split(text, file);
        if (records.Count == 0)
        {
            throw PlotInputException.At(file, 1, 1, "empty file: expected a header row");
        }
        var header = records[0].Select(f => f.Text).ToArray();
        var rows = new List<CsvField[]>(records.Count - 1);
        for (int r = 1; r < records.Count; r++)
        {
            var row = records[r];
            if (row.Length != header.Length)
            {
                throw PlotInputException.At(file, row[0].Line, 1,
                    $"{row.Length} field(s), expected {header.Length} ({string.Join(',', header)})");
            }
            rows.Add(row);
        }
        return new CsvTable(file, header, rows);
    }

    /// <summary>The index of column <paramref name="name"/>; an error naming the expected columns when it is missing.</summary>
    public int Column(string name, IReadOnlyList<string> expected)
    {
        if (_columns.TryGetValue(name, out int i))
        {
            return i;
        }
        throw PlotInputException.At(File, 1, 1, $"no column '{name}' (expected the columns {string.Join(',', expected)})");
    }

    /// <summary>The index of column <paramref name="name"/>, or -1.</summary>
    public int TryColumn(string name) => _columns.TryGetValue(name, out int i) ? i : -1;

    /// <summary>Field <paramref name="column"/> of <paramref name="row"/> as an integer.</summary>
    public long Long(CsvField[] row, int column)
    {
        var f = row[column];
        if (long.TryParse(f.Text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v))
        {
            return v;
        }
        throw PlotInputException.At(File, f.Line, f.Column, $"{Header[column]} '{f.Text}' is not an integer");
    }

    /// <summary>Field <paramref name="column"/> of <paramref name="row"/> as a finite number, or null when it is empty or <c>null</c>.</summary>
    public double? OptionalDouble(CsvField[] row, int column)
    {
        var f = row[column];
        if (f.Text.Length == 0 || f.Text == "null")
        {
            return null;
        }
        if (double.TryParse(f.Text, NumberStyles.Float, CultureInfo.InvariantCulture, out double v) && double.IsFinite(v))
        {
            return v;
        }
        throw PlotInputException.At(File, f.Line, f.Column, $"{Header[column]} '{f.Text}' is not a number");
    }

    /// <summary>An error about field <paramref name="column"/> of <paramref name="row"/>.</summary>
    public PlotInputException Error(CsvField[] row, int column, string message) =>
        PlotInputException.At(File, row[column].Line, row[column].Column, message);

    private static List<CsvField[]> Split(string text, string file)
    {
        var records = new List<CsvField[]>();
        var fields = new List<CsvField>();
        var sb = new StringBuilder();
        int i = 0, line = 1, col = 1;
        if (text.StartsWith('\uFEFF'))
        {
            i = 1;
        }
        while (i < text.Length)
        {
            // One record: fields separated by commas, ended by a line break or the end of the text.
            fields.Clear();
            while (true)
            {
                int fieldLine = line, fieldCol = col;
                sb.Clear();
                if (i < text.Length && text[i] == '"')
                {
                    i++;
                    col++;
                    while (true)
                    {
                        if (i >= text.Length)
                        {
                            throw PlotInputException.At(file, fieldLine, fieldCol, "unterminated quoted field");
                        }
                        char c = text[i];
                        if (c == '"')
                        {
                            if (i + 1 < text.Length && text[i + 1] == '"')
                            {
                                sb.Append('"');
                                i += 2;
                                col += 2;
                                continue;
                            }
                            i++;
                            col++;
                            break;
                        }
                        sb.Append(c);
                        i++;
                        if (c == '\n')
                        {
                            line++;
                            col = 1;
                        }
                        else
                        {
                            col++;
                        }
                    }
                    if (i < text.Length && text[i] is not (',' or '\r' or '\n'))
                    {
                        throw PlotInputException.At(file, line, col, "expected ',' or the end of the line after a quoted field");
                    }
                }
                else
                {
                    while (i < text.Length && text[i] is not (',' or '\r' or '\n'))
                    {
                        sb.Append(text[i]);
                        i++;
                        col++;
                    }
                }
                fields.Add(new CsvField(sb.ToString(), fieldLine, fieldCol));
                if (i < text.Length && text[i] == ',')
                {
                    i++;
                    col++;
                    continue;
                }
                break;
            }
            if (i < text.Length && text[i] == '\r')
            {
                i++;
            }
            if (i < text.Length && text[i] == '\n')
            {
                i++;
            }
            line++;
            col = 1;
            bool blank = fields.Count == 1 && fields[0].Text.Length == 0;
            if (!blank)
            {
                records.Add([.. fields]);
            }
        }
        return records;
    }
}
