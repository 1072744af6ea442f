using TscSim.Cli;

namespace TscSim.Tests.Cli;

/// <summary>
/// What the CLI test classes share: a private temporary folder (removed after the class's tests),
/// the command line run in-process with its exit code and both outputs, and file writing.
/// </summary>
public abstract class CliTestBase : IDisposable
{
    protected CliTestBase(string prefix)
    {
        Dir = Path.Combine(Path.GetTempPath(), $"tscsim-{prefix}-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Dir);
    }

    /// <summary>The test's own temporary folder.</summary>
    protected string Dir { get; }

    public void Dispose()
    {
        Directory.Delete(Dir, recursive: true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Runs <c>tscsim ARGS</c> in-process.</summary>
    internal static (int Code, string Out, string Err) Run(params string[] args)
    {
        var o = new StringWriter();
        var e = new StringWriter();
        int code = TscSimCli.Run(args, o, e);
        return (code, o.ToString(), e.ToString());
    }

    /// <summary>Writes <paramref name="text"/> to <paramref name="name"/> in <see cref="Dir"/> (creating its folder) and returns its path.</summary>
    protected string Write(string name, string text)
    {
        string path = Path.Combine(Dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllText(path, text);
        return path;
    }
}
