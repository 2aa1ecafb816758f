"""Long replies a contact centre's agent speaks (a bill reminder), in Malay and English: sentences that repeat up
to about 4,000 characters (`MAX_INPUT_CHARS` is 4,096). Used by the long-text integration test and the time to
first audio benchmark."""

from __future__ import annotations

MALAY = [
    "Selamat pagi, terima kasih kerana menghubungi pusat khidmat pelanggan kami.",
    "Kami ingin memaklumkan bahawa bil elektrik anda untuk bulan ini sudah sedia untuk dibayar.",
    "Jumlah yang perlu dibayar ialah seratus dua puluh ringgit, dan tarikh akhir pembayaran ialah minggu depan.",
    "Anda boleh membayar melalui aplikasi mudah alih, perbankan dalam talian, atau di mana-mana kaunter kami.",
    "Jika anda sudah membuat pembayaran, sila abaikan pesanan ini, dan terima kasih atas kerjasama anda.",
    "Sekiranya anda mempunyai sebarang pertanyaan tentang bil ini, ejen kami sedia membantu setiap hari.",
    "Waktu operasi kami ialah dari pukul lapan pagi hingga pukul sepuluh malam, termasuk hujung minggu.",
    "Untuk keselamatan akaun anda, jangan sekali-kali berkongsi kata laluan atau nombor pin dengan sesiapa.",
    "Pihak kami tidak akan meminta maklumat peribadi anda melalui panggilan telefon atau pesanan ringkas.",
    "Jika anda menerima panggilan yang mencurigakan, sila laporkan kepada kami dengan segera.",
    "Kami juga ingin mengingatkan anda tentang program ganjaran yang baru dilancarkan bulan lepas.",
    "Setiap pembayaran tepat pada masanya akan memberi anda mata ganjaran yang boleh ditebus kemudian.",
]
ENGLISH = [
    "Good morning, and thank you for calling the customer service centre.",
    "We would like to let you know that your electricity bill for this month is now ready to be paid.",
    "The amount due is one hundred and twenty ringgit, and the payment is due by the end of next week.",
    "You can pay through the mobile app, through online banking, or at any of our service counters.",
    "If you have already made the payment, please ignore this message, and thank you for your cooperation.",
    "Should you have any questions about this bill, our agents are ready to help you every day of the week.",
    "Our operating hours are from eight in the morning until ten at night, weekends and holidays included.",
    "For the safety of your account, never share your password or your pin number with anyone at all.",
    "We will never ask for your personal details through a phone call or a short text message.",
    "If you receive a call that seems suspicious, please report it to us as soon as you can.",
    "We would also like to remind you about the rewards programme that was launched last month.",
    "Every payment made on time earns you reward points that can be redeemed later for vouchers.",
]


def long_text(sentences: list[str], chars: int = 4000) -> str:
    out: list[str] = []
    i = 0
    while len(" ".join(out)) < chars - 120:
        out.append(sentences[i % len(sentences)])
        i += 1
    return " ".join(out)
