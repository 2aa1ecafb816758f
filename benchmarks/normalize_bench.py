"""Latency of `Normalizer.normalize` on ~500-character paragraphs, after warm-up. Prints p50/p90; asserts nothing.

    .venv/bin/python benchmarks/normalize_bench.py [--runs 300] [--profile]

`--profile` adds a cProfile listing of where the time goes. For comparison it also times malaya's own
rule normalizer on the Malay paragraph (what the first version called), unless `--no-malaya`.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.text.normalizer import Normalizer  # noqa: E402

PARAGRAPHS = {
    "malay": (
        "Kerajaan akan memperuntukkan RM500,000 untuk projek ini pada 12/03/2024. Menurut laporan, 25% "
        "daripada penduduk di KL menggunakan pengangkutan awam setiap hari. Sila hubungi 012-345 6789 atau "
        "emel info@contoh.com.my sebelum pukul 5.30 petang. Harga minyak naik kepada RM2.05 seliter, "
        "manakala suhu mencecah 35°C. Sebanyak 1,234 peserta hadir ke majlis ke-3 yang diadakan di Dewan "
        "Besar, dan mereka menerima 2 hadiah bernilai RM1.5k setiap satu. Maklumat lanjut di www.contoh.gov.my atau 1-300-88-1234."
    ),
    "english": (
        "**Your order is confirmed!** The total is RM1,299.90, payable by 15 March 2024. Our office at "
        "No. 12-3, Jalan SS2/24 opens Mon-Fri, 9am-5pm, and you can call 03-1234 5678 or visit "
        "https://www.example.com.my/help for details. Delivery takes 2-3 days and the parcel weighs 2.5kg. "
        "About 87% of customers rated us 5/5 in 2023, and the CEO said revenue grew 12% to USD 1.2M. "
        "Don't forget: the A380 flight MH370 story was in the 2010s news. Your OTP is 482913, valid for 5 mins. Thanks!"
    ),
    "mixed": (
        "Hi! Saya nak confirm booking untuk 3 orang pada 25/12 pukul 8.30 malam. Harga dia RM45.90 "
        "seorang, so total RM137.70 je. Nanti I call you balik, okay? Please check email saya at "
        "husein.zol05@gmail.com. Terima kasih! - Parking 2 jam percuma. - WiFi 100 Mbps. "
        "Kalau ada apa-apa, WhatsApp +6012-345 6789 sebelum 10pm. The event ends at 11.30pm and "
        "tickets cost RM50-RM80. Jumpa nanti! Dah transfer RM250 tadi, please check dan confirm dengan kami."
    ),
    "chinese": (
        "大家好，今天是2024年3月5日。这件衣服原价RM129.90，现在打折50%，只要RM64.95。我们下午3点半在KLCC见面，"
        "会议在15:30开始，大约有200个人参加。请在12/03/2024之前付款，或者打电话到012-3456789。明天 meeting pukul "
        "3 petang, 记得带文件。汽油价格是每公升RM2.05，比上个月涨了3.5%。他在1998年出生，今年26岁，身高170cm，"
        "体重65kg。快递预计3-5天到达，订单编号是0098765。第2天我们去了槟城，吃了2碗面。这部手机有128GB，"
        "价格是USD 999。气温高达35°C，大家要多喝水。老板说 the deadline is 5pm, 不要迟到。公司有2000名员工，"
        "去年营业额是RM1,250,000，增长了12%。学费是每月RM350，每天上课8小时。比分是3-1，我们赢了。"
        "房子卖了RM500,000，贷款利率是4.25%。电影在晚上8:45开始，票价是RM18。活动在2015-2020年举行，"
        "一共有12345人参加。请发电邮到info@contoh.com.my。我们 jumpa di Mid Valley, 下午2点。谢谢大家！"
    ),
}


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _time(fn, text: str, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and this thread's CPU milliseconds per call (CPU time is steadier on a shared machine)."""
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        fn(text)
        cpu.append((time.thread_time() - start_cpu) * 1000)
        wall.append((time.perf_counter() - start) * 1000)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-malaya", action="store_true", help="skip timing malaya's own normalizer")
    args = parser.parse_args()

    start = time.perf_counter()
    normalizer = Normalizer()
    normalizer.warmup()
    print(f"load + warmup: {time.perf_counter() - start:.1f} s")

    everything: list[float] = []
    for name, text in PARAGRAPHS.items():
        for _ in range(20):
            normalizer.normalize(text)
        samples, cpu = _time(normalizer.normalize, text, args.runs)
        everything += samples
        print(
            f"{name:8s} {len(text):4d} chars  p50 {statistics.median(samples):6.2f} ms  "
            f"p90 {_percentile(samples, 0.9):6.2f} ms  max {max(samples):6.2f} ms  "
            f"(CPU p50 {statistics.median(cpu):5.2f} ms)"
        )
    print(
        f"{'all':8s}             p50 {statistics.median(everything):6.2f} ms  p90 {_percentile(everything, 0.9):6.2f} ms"
    )

    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(100):
            for text in PARAGRAPHS.values():
                normalizer.normalize(text)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)

    if not args.no_malaya:
        _bench_malaya(PARAGRAPHS["malay"], min(args.runs, 50))


def _bench_malaya(text: str, runs: int) -> None:
    """malaya.normalizer.rules, emoji off. Needs PySastrawi for words starting "se"/"ter"; stubbed if absent."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import malaya
        import malaya.text.normalization as malaya_normalization

    class _NoStemmer:
        def stem(self, word: str) -> str:
            return word

    if malaya_normalization.sastrawi_stemmer is None:
        try:
            import Sastrawi  # noqa: F401
        except ImportError:
            malaya_normalization.sastrawi_stemmer = _NoStemmer()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rules = malaya.normalizer.rules.load()

    def run(t: str) -> str:
        return rules.normalize(t, normalize_emoji=False, normalize_entity=False)["normalize"]

    for _ in range(3):
        run(text)
    samples, _ = _time(run, text, runs)
    print(
        f"malaya.normalizer.rules (malay paragraph, for comparison): p50 {statistics.median(samples):6.2f} ms  "
        f"p90 {_percentile(samples, 0.9):6.2f} ms"
    )


if __name__ == "__main__":
    main()
