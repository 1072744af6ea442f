namespace TscSim.Tests.Plots;

/// <summary>
/// Tiny hand-written results and sweep folders whose figure data is worked out by hand in the tests.
/// </summary>
internal static class TinyFolders
{
    /// <summary>
    /// Hosts h0 (2 GHz, core 1 slowed to 1 GHz at 500 ms by a cpufreq event) and h1 (4 GHz);
    /// vm0 (2 vCPUs on h0), vm1 (1 vCPU on h1).
    /// </summary>
    public const string Scenario = """
        name: tiny
        duration: 1s
        hosts:
          - id: h0
            cpu: intel-nehalem
            frequency: 2GHz
            cores_per_socket: 2
          - id: h1
            cpu: intel-nehalem
            frequency: 4GHz
        vms:
          - id: vm0
            host: h0
            vcpus: 2
            workload: |
              loop:
                jmp loop
          - id: vm1
            host: h1
            workload: |
              loop:
                jmp loop
        events:
          - at: 500ms
            cpufreq: { host: h0, cores: [1], frequency: 1GHz }
        """;

    /// <summary>vm0: boot on tsc at 10 ms, tsc → hpet at 600 ms, trapped 200–400 ms and from 700 ms on; vm1: boot on kvm-clock.</summary>
    public const string Summary = """
        {
          "schema": "tscsim.summary/1",
          "scenario": "tiny",
          "seed": 1,
          "fingerprint": "0123456789abcdef",
          "complete": true,
          "simulated_ns": 1000000000,
          "vms": [
            {
              "id": "vm0",
              "clocksource_switches": [
                { "time_ns": 10000000, "from": null, "to": "tsc", "reason": "boot: rating 300" },
                { "time_ns": 600000000, "from": "tsc", "to": "hpet", "reason": "TSC unstable" }
              ],
              "trapping": [
                { "from_ns": 200000000, "to_ns": 400000000, "reason": "a" },
                { "from_ns": 700000000, "to_ns": null, "reason": "b" }
              ],
              "vcpus": [ { "id": 0 }, { "id": 1 } ]
            },
            {
              "id": "vm1",
              "clocksource_switches": [ { "time_ns": 10000000, "from": null, "to": "kvm-clock", "reason": "boot" } ],
              "trapping": [],
              "vcpus": [ { "id": 0 } ]
            }
          ]
        }
        """;

    public const string Reads = """
        true_ns,vm,vcpu,core,host,clock_ns,skew_ns,exited,cycles
        100000000,vm0,0,0,h0,100000500,500,0,50
        150000000,vm0,1,1,h0,149999000,-1000,0,50
        200000000,vm0,0,0,h0,200002000,2000,1,1000
        250000000,vm1,0,0,h1,250000000,0,0,100
        300000000,vm0,1,1,h0,300001500,1500,1,1000
        500000000,vm0,1,1,h0,500000000,0,0,100
        600000000,vm0,0,0,h0,600003000,3000,0,50
        """;

    public const string Exits = """
        true_ns,vm,vcpu,rdtsc,rdtscp,msr,mmio,pio,cpuid,hlt,exit_cycles,guest_cycles
        250000000,vm0,0,0,0,0,0,10,0,0,10000,1000000
        250000000,vm0,1,0,0,0,0,5,0,0,5000,1000000
        250000000,vm1,0,0,0,0,0,0,0,0,0,1000000
        500000000,vm0,0,100,0,0,0,10,0,0,110000,2000000
        500000000,vm0,1,50,0,0,0,5,0,0,55000,2000000
        500000000,vm1,0,0,0,0,0,0,0,0,0,2000000
        1000000000,vm0,0,100,0,0,1,10,0,0,111000,4000000
        1000000000,vm0,1,300,0,0,0,5,0,0,305000,4000000
        1000000000,vm1,0,0,0,0,0,0,0,0,0,4000000
        """;

    public const string Events = """
        true_ns,kind,subject,detail
        0,vm_start,vm0,"2 vCPUs on h0, guest linux-2.6.18"
        """;

    /// <summary>Writes the tiny results folder into <paramref name="dir"/> (optionally under <paramref name="sub"/>) and returns its path.</summary>
    public static string WriteResults(TempFolder dir, string sub = "results", string? reads = null)
    {
        dir.Write($"{sub}/summary.json", Summary);
        dir.Write($"{sub}/reads.csv", reads ?? Reads);
        dir.Write($"{sub}/exits.csv", Exits);
        dir.Write($"{sub}/events.csv", Events);
        dir.Write($"{sub}/scenario.resolved.yaml", Scenario);
        return System.IO.Path.Combine(dir.Path, sub);
    }

    /// <summary>
    /// Two parameters, dst_frequency in mixed units (1GHz, 500MHz, 2GHz) and trapping (on, off);
    /// repeats, two vCPUs, an incomplete run and an empty skew cell.
    /// </summary>
    public const string Sweep = """
        point,repeat,seed,fingerprint,complete,dst_frequency,trapping,vm,vcpu,reads,skew_max_abs_ns,skew_final_ns,drift_ppm,violations,exits_total,exits_rdtsc,exits_rdtscp,overhead_pct
        0,0,1,aaaaaaaaaaaaaaaa,true,1GHz,on,vm0,0,10,1000000,-1000000,1.5,0,10,10,0,1
        0,0,1,aaaaaaaaaaaaaaaa,true,1GHz,on,vm0,1,10,3000000,-3000000,1.5,0,10,10,0,3
        0,1,2,bbbbbbbbbbbbbbbb,true,1GHz,on,vm0,0,10,2000000,-2000000,1.5,0,10,10,0,2
        0,1,2,bbbbbbbbbbbbbbbb,true,1GHz,on,vm0,1,10,2000000,-2000000,1.5,0,10,10,0,2
        1,0,1,cccccccccccccccc,true,1GHz,off,vm0,0,10,500000000,500000000,1.5,0,0,0,0,0.5
        1,0,1,cccccccccccccccc,true,1GHz,off,vm0,1,10,500000000,500000000,1.5,0,0,0,0,0.5
        2,0,1,dddddddddddddddd,true,500MHz,on,vm0,0,10,4000000,-4000000,1.5,0,10,10,0,4
        2,0,1,dddddddddddddddd,true,500MHz,on,vm0,1,10,4000000,-4000000,1.5,0,10,10,0,4
        3,0,1,eeeeeeeeeeeeeeee,false,500MHz,off,vm0,0,10,999000000,999000000,1.5,0,0,0,0,99
        4,0,1,ffffffffffffffff,true,2GHz,off,vm0,0,0,,,,0,0,0,0,0.25
        """;
}
