# Energy model of a battery node: awake time per wake split into boot, meter read, Wi-Fi and
# MQTT, and battery life per read interval. The meter-read time is what linkbench measures; the
# other figures are published measurements, each with its source (../shared/platform/BATTERY.md).

# (phase, ms, mC, source)
BOOT = (635, 41.9, "stock MicroPython boot to main.py, PPK2 at 5 V (glenn20, BATTERY.md 4.2)")
# glenn20's Wi-Fi rows build on his optimised 70 ms / 3.32 mC boot (our reading of BATTERY.md
# 4.2, as its own 4.3 estimate does); taking that boot off leaves the radio part of a wake.
_OPT_BOOT_MS, _OPT_BOOT_MC = 70, 3.32
WIFI_MQTT_GOOD = (
    774 - _OPT_BOOT_MS,
    108.6 - _OPT_BOOT_MC,
    "Wi-Fi (static IP) + umqtt publish: 774 ms / 108.6 mC with boot (glenn20, BATTERY.md 4.2)",
)
WIFI_MQTT_BAD = (
    2928 - _OPT_BOOT_MS,
    341.3 - _OPT_BOOT_MC,
    "Wi-Fi (DHCP) + a slow publish: 2928 ms / 341.3 mC with boot (glenn20, BATTERY.md 4.2)",
)
CPU_ONLY_MA = 40  # CPU awake, radio off: BATTERY.md 4.3 synthesis (verify with a PPK2)
CELL_MAH = 2000  # one 2000 mAh Li-ion/LiPo cell, no derating, self-discharge not counted
BOARDS = (
    ("low-power board (66 uA deep sleep, UM FeatherS2)", 0.066),
    ("generic ESP32 dev board (15 mA in deep sleep)", 15.0),
)
INTERVALS_S = (60, 300, 900, 3600)


def wake_budget(read_ms, good=True):
    """[(phase, ms, mC, source)] for one wake: boot, meter read (Wi-Fi off), Wi-Fi + MQTT."""
    radio = WIFI_MQTT_GOOD if good else WIFI_MQTT_BAD
    read_mc = read_ms * CPU_ONLY_MA / 1000.0
    return [
        ("boot", BOOT[0], BOOT[1], BOOT[2]),
        (
            "meter read (Wi-Fi off)",
            read_ms,
            read_mc,
            "measured link time x %d mA CPU-only (BATTERY.md 4.3)" % CPU_ONLY_MA,
        ),  # fmt: skip
        ("Wi-Fi + MQTT publish", radio[0], radio[1], radio[2]),
    ]


def battery_days(interval_s, wake_mc, sleep_ma, cell_mah=CELL_MAH):
    wakes_per_day = 86400.0 / interval_s
    mah_per_day = wakes_per_day * wake_mc / 3600.0 + sleep_ma * 24.0
    return cell_mah / mah_per_day, mah_per_day


def table(read_ms):
    """Rows per board and interval: (board, interval_s, days_good, days_bad, mah_day_good)."""
    good = sum(p[2] for p in wake_budget(read_ms, True))
    bad = sum(p[2] for p in wake_budget(read_ms, False))
    rows = []
    for board, sleep_ma in BOARDS:
        for interval in INTERVALS_S:
            days_good, mah_good = battery_days(interval, good, sleep_ma)
            days_bad, _ = battery_days(interval, bad, sleep_ma)
            rows.append((board, interval, days_good, days_bad, mah_good))
    return rows


def plot(read_ms, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    good = sum(p[2] for p in wake_budget(read_ms, True))
    bad = sum(p[2] for p in wake_budget(read_ms, False))
    xs = [30 * 1.15**k for k in range(0, 50)]
    xs = [x for x in xs if x <= 6 * 3600]
    fig, ax = plt.subplots(figsize=(8, 4.8), dpi=100)
    for (board, sleep_ma), color in zip(BOARDS, ("tab:green", "tab:red")):
        ax.plot([x / 60 for x in xs], [battery_days(x, good, sleep_ma)[0] for x in xs],
                color=color, label=board + ", good Wi-Fi")  # fmt: skip
        ax.plot([x / 60 for x in xs], [battery_days(x, bad, sleep_ma)[0] for x in xs],
                color=color, linestyle="--", label=board + ", DHCP / slow Wi-Fi")  # fmt: skip
    for interval in INTERVALS_S:
        ax.axvline(interval / 60, color="0.85", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("read interval (minutes)")
    ax.set_ylabel("battery life on %d mAh (days)" % CELL_MAH)
    ax.set_title("kmp2mqtt in deep-sleep mode: battery life against read interval")
    ax.grid(True, which="both", linewidth=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    import os

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
