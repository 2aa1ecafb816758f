"""Cases for issue 33, item 4: the two misreadings a new user found (2026-12-07), as classes.

- A short Malay sentence made mostly of a title, a name and an identity-card number was taken for English and its
  number read in English digits with "no." kept: titles and patronymics (`app/data/names.tsv`) now vote, names do
  not, and "No."/"no" next to an identity, account or document label (`app/data/number_labels.tsv`) is read
  "nombor"/"number" with the label as it is said. The same forms in English sentences stay English.
- Chat spellings of common phrases ("tkasih", "trima kasih", "tysm") and words were left as written: more of them
  in `app/data/shortforms.tsv`; "x" alone is "tak" next to a Malay word only; a doubled shortform reads doubled.
Each expected reading was checked by hand.
"""

from __future__ import annotations

from tests.text.cases import Case

ISSUE33_CASES: list[Case] = [
    # --- names-ms: a short Malay sentence made of a title, a name and an identity number ----------------
    Case(
        "names-ms",
        "Encik Ahmad bin Ali, no. IC 850312-10-5521.",
        "Encik Ahmad bin Ali, nombor I C lapan lima kosong tiga satu dua, satu kosong, lima lima dua satu.",
    ),
    Case(
        "names-ms",
        "Puan Siti no. kp 900101-14-5678",
        "Puan Siti nombor K P sembilan kosong kosong satu kosong satu, satu empat, lima enam tujuh lapan",
    ),
    Case(
        "names-ms",
        "Datuk Seri Haji Razak bin Abdullah, No. KP 780215-08-1234.",
        "Datuk Seri Haji Razak bin Abdullah, nombor K P tujuh lapan kosong dua satu lima, kosong lapan, satu dua tiga empat.",
    ),
    Case(
        "names-ms",
        "Cik Lim a/p Muthu, no. akaun 1234567890.",
        "Cik Lim anak perempuan Muthu, nombor akaun satu dua tiga empat lima enam tujuh lapan sembilan kosong.",
    ),
    Case(
        "names-ms",
        "Tuan Haji Ismail, no. tel 012-3456789.",
        "Tuan Haji Ismail, nombor telefon kosong satu dua, tiga empat lima, enam tujuh lapan sembilan.",
    ),
    Case(
        "names-ms",
        "Puan Siti binti Hassan, No. MyKad 900101-14-5678.",
        "Puan Siti binti Hassan, nombor My Kad sembilan kosong kosong satu kosong satu, satu empat, lima enam tujuh lapan.",
    ),
    Case(
        "names-ms",
        "Encik Kumar a/l Rajan, no. IC: 850312-10-5521",
        "Encik Kumar anak lelaki Rajan, nombor I C lapan lima kosong tiga satu dua, satu kosong, lima lima dua satu",
    ),
    Case(
        "names-ms",
        "Dato' Lee Chong Wei, no. tel 03-2161 1234.",
        "Dato' Lee Chong Wei, nombor telefon kosong tiga, dua satu enam satu, satu dua tiga empat.",
    ),
    Case(
        "names-ms",
        "Hajah Fatimah, No. Akaun: 1122334455.",
        "Hajah Fatimah, nombor Akaun satu satu dua dua tiga tiga empat empat lima lima.",
    ),
    Case(
        "names-ms",
        "En. Zul, no kp 850312105521",
        "Encik Zul, nombor K P lapan lima kosong tiga satu dua, satu kosong, lima lima dua satu",
    ),
    Case(
        "idno-ms",
        "No. IC: 850312 10 5521.",
        "nombor I C lapan lima kosong tiga satu dua, satu kosong, lima lima dua satu.",
    ),
    Case(
        "idno-ms",
        "no akaun 123456789012",
        "nombor akaun satu dua tiga empat lima enam tujuh lapan sembilan kosong satu dua",
    ),
    Case(
        "idno-en",
        "Mr. Tan, IC no. 850312105521.",
        "mister Tan, I C number eight five zero three one two, one zero, five five two one.",
    ),
    Case("names-ms", "Cikgu Rosnah, no. pelajar 12345.", "Cikgu Rosnah, nombor pelajar satu dua tiga empat lima."),
    Case(
        "names-ms",
        "Ustaz Hamid, no. tel. 019-8765432",
        "Ustaz Hamid, nombor telefon kosong satu sembilan, lapan tujuh enam, lima empat tiga dua",
    ),
    Case(
        "names-ms",
        "Nama: Siti bt Ahmad, No. K/P 880808-08-8888.",
        "Nama: Siti binti Ahmad, nombor K P lapan lapan kosong lapan kosong lapan, kosong lapan, lapan lapan lapan lapan.",
    ),
    Case(
        "names-ms", "Tan Sri Ali, No. Rujukan: ABC12345.", "Tan Sri Ali, nombor Rujukan A B C satu dua tiga empat lima."
    ),
    Case("names-ms", "Pak Mat, no. ahli 4455.", "Pak Mat, nombor ahli empat empat lima lima."),
    Case(
        "names-ms",
        "Kak Ros, no hp 013-2223344",
        "Kak Ros, nombor H P kosong satu tiga, dua dua dua, tiga tiga empat empat",
    ),
    Case(
        "names-ms",
        "IC no. 850312-10-5521, Encik Ahmad.",
        "nombor I C lapan lima kosong tiga satu dua, satu kosong, lima lima dua satu, Encik Ahmad.",
    ),
    Case("names-ms", "Saya nak jumpa Encik Ahmad bin Ali esok.", "Saya nak jumpa Encik Ahmad bin Ali esok."),
    Case("names-ms", "Muthu a/l Samy", "Muthu anak lelaki Samy"),
    Case("names-ms", "Ahmad bin Ali", "Ahmad bin Ali"),
    # --- idno-ms: "no." next to an identity, account or document label --------------------------------
    Case(
        "idno-ms",
        "No. IC anda 850312-10-5521.",
        "nombor I C anda lapan lima kosong tiga satu dua, satu kosong, lima lima dua satu.",
    ),
    Case("idno-ms", "Sila berikan no. akaun bank anda.", "Sila berikan nombor akaun bank anda."),
    Case("idno-ms", "No. Tel: 03-1234 5678", "nombor telefon kosong tiga, satu dua tiga empat, lima enam tujuh lapan"),
    Case(
        "idno-ms",
        "no tel sy 012-3456789",
        "nombor telefon saya kosong satu dua, tiga empat lima, enam tujuh lapan sembilan",
    ),
    Case(
        "idno-ms",
        "Sila semak No. Kad Pengenalan 850312-10-5521.",
        "Sila semak nombor Kad Pengenalan lapan lima kosong tiga satu dua, satu kosong, lima lima dua satu.",
    ),
    Case(
        "idno-ms",
        "Encik Ahmad, sila bayar bil no. 4455 sebelum Jumaat.",
        "Encik Ahmad, sila bayar nombor bil empat empat lima lima sebelum Jumaat.",
    ),
    # --- names-en, idno-en: the same forms in English sentences stay English --------------------------
    Case(
        "names-en",
        "Mr. John Smith, IC no. 850312-10-5521.",
        "mister John Smith, I C number eight five zero three one two, one zero, five five two one.",
    ),
    Case(
        "names-en",
        "Mr. Lim s/o Tan Ah Kow, Passport No. A1234567.",
        "mister Lim son of Tan Ah Kow, Passport number A one two three four five six seven.",
    ),
    Case("names-en", "Encik Ahmad will call you tomorrow.", "Encik Ahmad will call you tomorrow."),
    Case("names-en", "Puan Siti said the meeting is at 3pm.", "Puan Siti said the meeting is at three P M."),
    Case("names-en", "Datuk Seri Anwar said the budget is ready.", "Datuk Seri Anwar said the budget is ready."),
    Case(
        "names-en",
        "Please call Encik Ahmad at 012-3456789.",
        "Please call Encik Ahmad at zero one two, three four five, six seven eight nine.",
    ),
    Case(
        "idno-en",
        "Mrs. Tan, your account no. is 1234567890.",
        "missus Tan, your account number is one two three four five six seven eight nine zero.",
    ),
    Case(
        "idno-en",
        "Please quote your ref no. 556677 when calling.",
        "Please quote your reference number five five six six seven seven when calling.",
    ),
    Case(
        "idno-en",
        "Passport No. A12345678 expires soon.",
        "Passport number A one two three four five six seven eight expires soon.",
    ),
    Case(
        "idno-en",
        "Call Tel. No. 03-1234 5678 now.",
        "Call telephone number zero three, one two three four, five six seven eight now.",
    ),
    Case(
        "idno-en",
        "Your IC no 850312-10-5521 is verified.",
        "Your I C number eight five zero three one two, one zero, five five two one is verified.",
    ),
    Case(
        "idno-en",
        "Madam Chan, invoice no. 20231 is paid.",
        "Madam Chan, invoice number two zero two three one is paid.",
    ),
    Case(
        "idno-en",
        "Dear Mr. Tan, please find attached invoice no. 7788.",
        "Dear mister Tan, please find attached invoice number seven seven eight eight.",
    ),
    # --- keep-en: "no" that is no number sign --------------------------------------------------------
    Case("keep-en", "There is no 5 year old here.", "There is no five year old here."),
    Case("keep-en", "I have no account 12345 here.", "I have no account one two three four five here."),
    Case("keep-en", "He said no. Account closed.", "He said no. Account closed."),
    Case("keep-en", "Say no. Then leave.", "Say no. Then leave."),
    Case("keep-en", "No, I said no.", "No, I said no."),
    # --- chat-ms, chat-en: chat spellings of common phrases and words -----------------------------------
    Case("chat-ms", "Tkasih ya!", "Terima kasih ya!"),
    Case("chat-ms", "trima kasih sbb tolong sy", "terima kasih sebab tolong saya"),
    Case("chat-ms", "Ok bro, tkasih!", "okay bro, terima kasih!"),
    Case("chat-ms", "Tksh cikgu!", "Terima kasih cikgu!"),
    Case("chat-ms", "Tq, sy dah trima barang", "Thank you, saya dah terima barang"),
    Case("chat-ms", "Askum, tkasih sbb dtg", "Assalamualaikum, terima kasih sebab datang"),
    Case("chat-ms", "Wslm, sy dah smpai", "Waalaikumussalam, saya dah sampai"),
    Case("chat-ms", "jgn lupa blh x", "jangan lupa boleh tak"),
    Case("chat-ms", "Boleh x?", "Boleh tak?"),
    Case("chat-ms", "Nak x?", "Nak tak?"),
    Case("chat-ms", "Saya x sure la", "Saya tak sure la"),
    Case("chat-ms", "x boleh la", "tak boleh la"),
    Case("chat-ms", "Dia mmng x suka", "Dia memang tak suka"),
    Case("chat-ms", "Klu x dpt, bgtau sy", "Kalau tak dapat, bagitau saya"),
    Case("chat-ms", "Xleh la, sy sbk", "Tak leh la, saya sibuk"),
    Case("chat-ms", "Dia xleh dtg, dia sbk", "Dia tak leh datang, dia sibuk"),
    Case("chat-ms", "bdk2 tu nakal", "budak-budak tu nakal"),
    Case("chat-ms", "kwn2 sy dah sampai", "kawan-kawan saya dah sampai"),
    Case("chat-ms", "Kita jumpa kt kedai", "Kita jumpa kat kedai"),
    Case("chat-ms", "Sy tgu kt dpn rumah", "Saya tunggu kat depan rumah"),
    Case("chat-ms", "Jmpa kt kdai mkn ptg ni", "Jumpa kat kedai makan petang ni"),
    Case("chat-ms", "Sy tkut nk blk sorg", "Saya takut nak balik seorang"),
    Case("chat-ms", "Nnti sy tlp u", "Nanti saya telefon you"),
    Case("chat-ms", "Brp hrga ni?", "Berapa harga ni?"),
    Case("chat-ms", "Mne kunci kereta?", "Mana kunci kereta?"),
    Case("chat-ms", "Siti bt Ahmad bt kek", "Siti binti Ahmad buat kek"),
    Case("chat-ms", "Kita jumpa dr rumah dia", "Kita jumpa dari rumah dia"),
    Case("chat-en", "Thanks for the help, tysm", "Thanks for the help, thank you so much"),
    Case("chat-en", "np bro, gtg now", "no problem bro, got to go now"),
    Case("chat-en", "Omw, brb", "On my way, be right back"),
    Case("chat-en", "Thanks bro, tkasih sbb tolong", "Thanks bro, terima kasih sebab tolong"),
    # --- keep-x: "x" as a letter or a multiplication is not "tak" -------------------------------------
    Case("keep-en", "Plan x is better", "Plan x is better"),
    Case("keep-en", "Use x as the unknown.", "Use x as the unknown."),
    Case("keep-en", "The x axis shows time.", "The x axis shows time."),
    Case("keep-en", "Size 2 x 3 metres", "Size two by three metres"),
    Case("keep-en", "Malcolm X was born in 1925.", "Malcolm X was born in nineteen twenty five."),
    # --- "Ms." read as a title, not its letters; "MS" (Microsoft, a document code) spelled as before ----------
    Case("names-en", "Ms. Tan, your appointment is confirmed.", "miz Tan, your appointment is confirmed."),
    Case("names-en", "Hi Ms Lim, thanks for waiting.", "Hi miz Lim, thanks for waiting."),
    Case("keep-en", "Open the file in MS Word.", "Open the file in M S Word."),
    Case("keep-en", "It takes 200 ms.", "It takes two hundred milliseconds."),
    # --- a lone capital before "/L" is no unit: "A/L" (A-Level), while names keep "anak lelaki" ---------------
    Case("keep-en", "My A/L results came out.", "My A or L results came out."),
    Case("names-ms", "KUMAR A/L RAJAN", "Kumar anak lelaki Rajan"),
    Case("money-ms", "Kadar RM50/hari untuk bilik.", "Kadar lima puluh ringgit per hari untuk bilik."),
]
