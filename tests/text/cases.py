"""Input -> spoken form, as a Malaysian listener expects it read. Written before the code, per category.

Conventions where more than one reading is legitimate (the code follows these):
- Malay numbers are malaya's words, space-separated: "dua puluh satu", "seratus", "seribu", "sebelas";
  decimals "perpuluhan" + digits one by one; negatives "negatif"; zero digit "kosong".
- English numbers are British, no hyphens: "one hundred and twenty one"; "point" + digits; "minus"; "zero".
- Years: Malay reads the cardinal ("dua ribu dua puluh empat"); English reads pairs ("twenty twenty
  four", "nineteen eighty seven", "two thousand and five").
- Money: amount then currency; sen/cents after ringgit/dollars; K is expanded ("RM5k" -> "lima ribu
  ringgit"), M/B keep the scale word ("RM2.5 bilion" -> "dua perpuluhan lima bilion ringgit").
- Times: 12-hour clock with the part of day. Malay "pukul lapan tiga puluh minit pagi", part of day from the
  hour (pagi, tengah hari 12-1pm, petang 2-6pm, malam 7-11pm, tengah malam 12am); English "three thirty P M",
  "eight o'clock". 24-hour times (13-23h, 0h, or a leading zero) get the part of day.
- Dates are day first (Malaysia). Malay "dua belas Mac dua ribu dua puluh empat"; English "the twelfth of
  March twenty twenty four", or "March fifth, twenty twenty four" when written month first. The month is
  spoken in the sentence's language.
- Phones, IC numbers: digit by digit, groups separated by commas (pauses); "+" is "tambah"/"plus".
- Emails and URLs: "dot", "at", "slash", "dash", "underscore" in both languages; scheme, query and
  fragment are not read; "www" is "w w w".
- Acronyms of 2-4 capitals are spelled with spaces ("K W S P"); longer pronounceable ones are words.
- Ranges: "hingga" / "to". Percent: "peratus" / "percent". Units: Malay DBP names, British English.
- English contractions are kept ("I'm", "don't"): that is how they are read. Malay chat shortforms that
  cannot be read as written are expanded ("yg" -> "yang"); colloquial words are kept ("tak", "je").
- An ordinal keeps the language it is written in: "ke-3" -> "ketiga", "3rd" -> "third".
- Text with no words to tell the language (a bare "RM500,000") is read in Malay.
"""

from __future__ import annotations

from typing import NamedTuple


class Case(NamedTuple):
    category: str
    text: str
    expected: str


CASES: list[Case] = [
    # --- money, Malay ---------------------------------------------------------------------------
    Case("money-ms", "RM500,000", "lima ratus ribu ringgit"),
    Case("money-ms", "Harga rumah itu RM500,000.", "Harga rumah itu lima ratus ribu ringgit."),
    Case("money-ms", "Saya bayar RM5.50 untuk kopi.", "Saya bayar lima ringgit lima puluh sen untuk kopi."),
    Case("money-ms", "Tambang bas hanya RM0.50 sahaja.", "Tambang bas hanya lima puluh sen sahaja."),
    Case(
        "money-ms",
        "Kerajaan memperuntukkan RM2.5 bilion untuk projek itu.",
        "Kerajaan memperuntukkan dua perpuluhan lima bilion ringgit untuk projek itu.",
    ),
    Case("money-ms", "Gaji dia RM5k sebulan.", "Gaji dia lima ribu ringgit sebulan."),
    Case("money-ms", "Kos projek ialah RM1.2M.", "Kos projek ialah satu perpuluhan dua juta ringgit."),
    Case(
        "money-ms",
        "Harga barang itu RM 1,234.56 sahaja.",
        "Harga barang itu seribu dua ratus tiga puluh empat ringgit lima puluh enam sen sahaja.",
    ),
    Case("money-ms", "Dia menderma RM10 juta kepada hospital.", "Dia menderma sepuluh juta ringgit kepada hospital."),
    Case(
        "money-ms",
        "Syarikat itu mencatat keuntungan USD 5K bulan lepas.",
        "Syarikat itu mencatat keuntungan lima ribu dolar Amerika bulan lepas.",
    ),
    Case("money-ms", "Harga tiket ialah 50 sen.", "Harga tiket ialah lima puluh sen."),
    Case(
        "money-ms",
        "Yuran pendaftaran RM100-200 bergantung kepada kategori.",
        "Yuran pendaftaran seratus hingga dua ratus ringgit bergantung kepada kategori.",
    ),
    Case(
        "money-ms",
        "Sewa bilik antara RM300-RM500 sebulan.",
        "Sewa bilik antara tiga ratus ringgit hingga lima ratus ringgit sebulan.",
    ),
    Case(
        "money-ms", "Harga minyak naik kepada RM2.05 seliter.", "Harga minyak naik kepada dua ringgit lima sen seliter."
    ),
    Case("money-ms", "Dia ada rm50 je dalam dompet.", "Dia ada lima puluh ringgit je dalam dompet."),
    Case("money-ms", "Caj perkhidmatan ialah RM1.", "Caj perkhidmatan ialah satu ringgit."),
    Case("money-ms", "Tiket konsert itu berharga $120.", "Tiket konsert itu berharga seratus dua puluh dolar."),
    Case("money-ms", "Harga saham naik kepada RM3.", "Harga saham naik kepada tiga ringgit."),
    # --- money, English -------------------------------------------------------------------------
    Case("money-en", "The house costs RM500,000.", "The house costs five hundred thousand ringgit."),
    Case("money-en", "I paid RM5.50 for the coffee.", "I paid five ringgit fifty sen for the coffee."),
    Case(
        "money-en",
        "The government allocated RM2.5 billion for the project.",
        "The government allocated two point five billion ringgit for the project.",
    ),
    Case("money-en", "Her salary is RM5k a month.", "Her salary is five thousand ringgit a month."),
    Case("money-en", "The deal is worth USD 1.2M.", "The deal is worth one point two million U S dollars."),
    Case("money-en", "It only costs $5.99 online.", "It only costs five dollars ninety nine cents online."),
    Case("money-en", "The fee is USD 1.", "The fee is one U S dollar."),
    Case(
        "money-en",
        "Prices range from RM100 to RM200.",
        "Prices range from one hundred ringgit to two hundred ringgit.",
    ),
    Case("money-en", "You will get 50 sen back.", "You will get fifty sen back."),
    Case("money-en", "Tickets cost €20 each.", "Tickets cost twenty euros each."),
    Case("money-en", "The price is RM1,000,000.", "The price is one million ringgit."),
    Case("money-en", "He earns RM3,500 per month.", "He earns three thousand five hundred ringgit per month."),
    Case(
        "money-en",
        "The bill came to RM123.40.",
        "The bill came to one hundred and twenty three ringgit forty sen.",
    ),
    Case(
        "money-en", "The fees are RM100-200 per person.", "The fees are one hundred to two hundred ringgit per person."
    ),
    # --- cardinals and plain numbers ---------------------------------------------------------------
    Case("number-en", "I have 2 cats.", "I have two cats."),
    Case("number-ms", "Saya ada 2 ekor kucing.", "Saya ada dua ekor kucing."),
    Case("number-en", "There are 21 students in the class.", "There are twenty one students in the class."),
    Case(
        "number-ms",
        "Terdapat 21 orang pelajar dalam kelas itu.",
        "Terdapat dua puluh satu orang pelajar dalam kelas itu.",
    ),
    Case(
        "number-en",
        "The stadium holds 87,411 people.",
        "The stadium holds eighty seven thousand four hundred and eleven people.",
    ),
    Case(
        "number-ms",
        "Stadium itu memuatkan 87,411 orang.",
        "Stadium itu memuatkan lapan puluh tujuh ribu empat ratus sebelas orang.",
    ),
    Case("number-ms", "Sebanyak 1,234 peserta hadir.", "Sebanyak seribu dua ratus tiga puluh empat peserta hadir."),
    Case("number-en", "The value of pi is about 3.14.", "The value of pi is about three point one four."),
    Case("number-ms", "Nilai pi lebih kurang 3.14.", "Nilai pi lebih kurang tiga perpuluhan satu empat."),
    Case("number-ms", "Suhu malam tadi -5 darjah.", "Suhu malam tadi negatif lima darjah."),
    Case("number-en", "The temperature dropped to -5°C.", "The temperature dropped to minus five degrees Celsius."),
    Case("number-ms", "Kami menjual 100 unit semalam.", "Kami menjual seratus unit semalam."),
    Case("number-en", "We sold 100 units yesterday.", "We sold one hundred units yesterday."),
    Case("number-ms", "Dia berumur 11 tahun.", "Dia berumur sebelas tahun."),
    Case("number-en", "The town has 1000000 residents.", "The town has one million residents."),
    Case("number-ms", "Kod pengesahan anda ialah 0071.", "Kod pengesahan anda ialah kosong kosong tujuh satu."),
    Case("number-en", "Your code is 0071.", "Your code is zero zero seven one."),
    Case("number-ms", "Prestasi meningkat 10x.", "Prestasi meningkat sepuluh kali."),
    Case("number-en", "It grew 3x faster.", "It grew three times faster."),
    Case("number-en", "He has 10K followers.", "He has ten thousand followers."),
    Case("number-ms", "Video itu ditonton 2M kali.", "Video itu ditonton dua juta kali."),
    Case("number-ms", "Saya beli 12 biji telur.", "Saya beli dua belas biji telur."),
    Case("number-en", "The answer is 0.", "The answer is zero."),
    Case("number-ms", "Jumlahnya 1,001,000 orang.", "Jumlahnya satu juta seribu orang."),
    Case("number-en", "He wrote 101 songs.", "He wrote one hundred and one songs."),
    Case(
        "number-ms",
        "Malaysia ada 13 negeri dan 3 wilayah persekutuan.",
        "Malaysia ada tiga belas negeri dan tiga wilayah persekutuan.",
    ),
    Case("number-en", "He scored 1999 points.", "He scored one thousand nine hundred and ninety nine points."),
    Case(
        "number-en",
        "Please update to version 2.1.3 today.",
        "Please update to version two point one point three today.",
    ),
    # --- phone numbers ----------------------------------------------------------------------------
    Case(
        "phone-ms",
        "Sila hubungi 012-3456789.",
        "Sila hubungi kosong satu dua, tiga empat lima, enam tujuh lapan sembilan.",
    ),
    Case(
        "phone-en",
        "Call me at 012-345 6789.",
        "Call me at zero one two, three four five, six seven eight nine.",
    ),
    Case(
        "phone-ms",
        "Nombor pejabat kami 03-1234 5678.",
        "Nombor pejabat kami kosong tiga, satu dua tiga empat, lima enam tujuh lapan.",
    ),
    Case(
        "phone-en",
        "Our office number is 03-12345678.",
        "Our office number is zero three, one two three four, five six seven eight.",
    ),
    Case(
        "phone-ms",
        "Hubungi +6012-345 6789 untuk maklumat lanjut.",
        "Hubungi tambah enam kosong, satu dua, tiga empat lima, enam tujuh lapan sembilan untuk maklumat lanjut.",
    ),
    Case(
        "phone-en",
        "WhatsApp me at +60 12 345 6789.",
        "WhatsApp me at plus six zero, one two, three four five, six seven eight nine.",
    ),
    Case(
        "phone-ms",
        "Telefon 0123456789 sekarang.",
        "Telefon kosong satu dua, tiga empat lima, enam tujuh lapan sembilan sekarang.",
    ),
    Case(
        "phone-ms",
        "Talian bebas tol 1-300-88-1234.",
        "Talian bebas tol satu, tiga kosong kosong, lapan lapan, satu dua tiga empat.",
    ),
    Case(
        "phone-en",
        "Call 011-2345 6789 now.",
        "Call zero one one, two three four five, six seven eight nine now.",
    ),
    # --- IC numbers -------------------------------------------------------------------------------
    Case(
        "ic-ms",
        "Nombor kad pengenalan saya 901231-14-5678.",
        "Nombor kad pengenalan saya sembilan kosong satu dua tiga satu, satu empat, lima enam tujuh lapan.",
    ),
    Case(
        "ic-en",
        "My IC number is 850101-10-1234.",
        "My I C number is eight five zero one zero one, one zero, one two three four.",
    ),
    # --- emails and URLs --------------------------------------------------------------------------
    Case("email-ms", "Emel saya husein.zol05@gmail.com.", "Emel saya husein dot zol kosong lima at gmail dot com."),
    Case("email-en", "Send it to info@example.com.my please.", "Send it to info at example dot com dot my please."),
    Case(
        "email-en",
        "Email support_team@my-company.com today.",
        "Email support underscore team at my dash company dot com today.",
    ),
    Case(
        "url-ms", "Layari https://www.jpj.gov.my untuk maklumat.", "Layari w w w dot jpj dot gov dot my untuk maklumat."
    ),
    Case(
        "url-en",
        "Visit https://example.com/about-us for details.",
        "Visit example dot com slash about dash us for details.",
    ),
    Case("url-en", "Check google.com for more.", "Check google dot com for more."),
    Case(
        "url-ms",
        "Daftar di laman mysejahtera.gov.my sekarang.",
        "Daftar di laman mysejahtera dot gov dot my sekarang.",
    ),
    Case(
        "url-en",
        "See https://docs.example.com/v2/guide?lang=en#intro for the guide.",
        "See docs dot example dot com slash v two slash guide for the guide.",
    ),
    # --- times ------------------------------------------------------------------------------------
    Case("time-ms", "Mesyuarat bermula pukul 8.30 pagi.", "Mesyuarat bermula pukul lapan tiga puluh minit pagi."),
    Case("time-ms", "Jumpa esok 3pm.", "Jumpa esok tiga petang."),
    Case("time-en", "The meeting starts at 3pm.", "The meeting starts at three P M."),
    Case("time-en", "The shop opens at 10:30am.", "The shop opens at ten thirty A M."),
    Case("time-ms", "Kedai dibuka pukul 10:30am.", "Kedai dibuka pukul sepuluh tiga puluh minit pagi."),
    Case("time-en", "The flight departs at 14:30.", "The flight departs at two thirty P M."),
    Case("time-ms", "Penerbangan berlepas pada 14:30.", "Penerbangan berlepas pada dua tiga puluh minit petang."),
    Case("time-en", "Let's meet at 8:00.", "Let's meet at eight o'clock."),
    Case("time-en", "Call me at 3:05 pm.", "Call me at three oh five P M."),
    Case("time-ms", "Kedai tutup pukul 10 malam.", "Kedai tutup pukul sepuluh malam."),
    Case("time-ms", "Waktu operasi kami 9am-5pm.", "Waktu operasi kami sembilan pagi hingga lima petang."),
    Case("time-en", "Office hours are 9am-5pm.", "Office hours are nine A M to five P M."),
    Case("time-ms", "Dia tidur pukul 12am.", "Dia tidur pukul dua belas tengah malam."),
    Case("time-en", "Lunch is at 12pm.", "Lunch is at twelve P M."),
    Case("time-ms", "Kelas bermula pukul 7.45 pagi.", "Kelas bermula pukul tujuh empat puluh lima minit pagi."),
    Case("time-en", "The train leaves at 07:15.", "The train leaves at seven fifteen A M."),
    Case("time-ms", "Kita jumpa pukul 9 malam.", "Kita jumpa pukul sembilan malam."),
    Case("time-en", "The event ends at 11.30pm.", "The event ends at eleven thirty P M."),
    Case("time-ms", "Majlis tamat pada 11.30pm.", "Majlis tamat pada sebelas tiga puluh minit malam."),
    Case("time-en", "See you at 3 p.m.", "See you at three P M."),
    # --- dates ------------------------------------------------------------------------------------
    Case("date-ms", "Tarikh akhir ialah 01/12/2024.", "Tarikh akhir ialah satu Disember dua ribu dua puluh empat."),
    Case("date-en", "The deadline is 01/12/2024.", "The deadline is the first of December twenty twenty four."),
    Case(
        "date-ms", "Dia lahir pada 12 Mac 1990.", "Dia lahir pada dua belas Mac seribu sembilan ratus sembilan puluh."
    ),
    Case("date-en", "She was born on 12 March 1990.", "She was born on the twelfth of March nineteen ninety."),
    Case("date-en", "The event is on March 5, 2024.", "The event is on March fifth, twenty twenty four."),
    Case(
        "date-ms",
        "Majlis akan diadakan pada 2024-03-15.",
        "Majlis akan diadakan pada lima belas Mac dua ribu dua puluh empat.",
    ),
    Case(
        "date-en", "Report generated on 2024-03-15.", "Report generated on the fifteenth of March twenty twenty four."
    ),
    Case("date-ms", "Hari Krismas jatuh pada 25 Disember.", "Hari Krismas jatuh pada dua puluh lima Disember."),
    Case("date-en", "Christmas is on 25 December.", "Christmas is on the twenty fifth of December."),
    Case(
        "date-ms",
        "Malaysia merdeka pada 31 Ogos 1957.",
        "Malaysia merdeka pada tiga puluh satu Ogos seribu sembilan ratus lima puluh tujuh.",
    ),
    Case(
        "date-en",
        "Malaysia gained independence on 31st August 1957.",
        "Malaysia gained independence on the thirty first of August nineteen fifty seven.",
    ),
    Case("date-ms", "Invois ini bertarikh 5.6.2023.", "Invois ini bertarikh lima Jun dua ribu dua puluh tiga."),
    Case("date-en", "Payment is due 15-04-2024.", "Payment is due the fifteenth of April twenty twenty four."),
    Case("date-ms", "Jualan bermula Jun 2024.", "Jualan bermula Jun dua ribu dua puluh empat."),
    Case("date-en", "The law changed in June 2024.", "The law changed in June twenty twenty four."),
    Case(
        "date-ms",
        "Tempahan anda disahkan untuk 12/03/2024.",
        "Tempahan anda disahkan untuk dua belas Mac dua ribu dua puluh empat.",
    ),
    Case("date-ms", "Cuti bermula 1 Jan.", "Cuti bermula satu Januari."),
    # --- years and decades ------------------------------------------------------------------------
    Case("year-en", "He was born in 1987.", "He was born in nineteen eighty seven."),
    Case(
        "year-ms",
        "Dia dilahirkan pada tahun 1987.",
        "Dia dilahirkan pada tahun seribu sembilan ratus lapan puluh tujuh.",
    ),
    Case("year-en", "The company was founded in 2005.", "The company was founded in two thousand and five."),
    Case("year-en", "We moved here in 2010.", "We moved here in twenty ten."),
    Case("year-en", "Sales grew from 2019 to 2023.", "Sales grew from twenty nineteen to twenty twenty three."),
    Case(
        "year-ms",
        "Data dari 2019-2023 menunjukkan peningkatan.",
        "Data dari dua ribu sembilan belas hingga dua ribu dua puluh tiga menunjukkan peningkatan.",
    ),
    Case("year-en", "Music from the 1980s was great.", "Music from the nineteen eighties was great."),
    Case(
        "year-ms",
        "Lagu tahun 1980-an memang sedap.",
        "Lagu tahun seribu sembilan ratus lapan puluhan memang sedap.",
    ),
    Case("year-en", "Budget 2024 was announced today.", "Budget twenty twenty four was announced today."),
    Case("year-ms", "Belanjawan 2024 telah diumumkan.", "Belanjawan dua ribu dua puluh empat telah diumumkan."),
    Case("year-en", "In 2000, the population was small.", "In two thousand, the population was small."),
    Case("year-en", "I grew up in the '90s.", "I grew up in the nineties."),
    # --- percentages ------------------------------------------------------------------------------
    Case(
        "percent-ms",
        "Sebanyak 25% penduduk menggunakan pengangkutan awam.",
        "Sebanyak dua puluh lima peratus penduduk menggunakan pengangkutan awam.",
    ),
    Case(
        "percent-en",
        "About 25% of people use public transport.",
        "About twenty five percent of people use public transport.",
    ),
    Case("percent-ms", "Kadar faedah ialah 3.5%.", "Kadar faedah ialah tiga perpuluhan lima peratus."),
    Case("percent-en", "The interest rate is 3.5%.", "The interest rate is three point five percent."),
    Case("percent-ms", "Diskaun 10-20% untuk ahli.", "Diskaun sepuluh hingga dua puluh peratus untuk ahli."),
    Case("percent-en", "Get 10-20% off for members.", "Get ten to twenty percent off for members."),
    Case("percent-en", "The battery is at 100%.", "The battery is at one hundred percent."),
    # --- units ------------------------------------------------------------------------------------
    Case("unit-ms", "Berat badan saya 61.2 kg.", "Berat badan saya enam puluh satu perpuluhan dua kilogram."),
    Case("unit-en", "I weigh 61.2 kg.", "I weigh sixty one point two kilograms."),
    Case("unit-ms", "Jarak ke pejabat 15km.", "Jarak ke pejabat lima belas kilometer."),
    Case("unit-en", "The office is 15km away.", "The office is fifteen kilometres away."),
    Case("unit-ms", "Suhu hari ini 35°C.", "Suhu hari ini tiga puluh lima darjah Celsius."),
    Case("unit-en", "It's 35°C today.", "It's thirty five degrees Celsius today."),
    Case("unit-ms", "Minum 500ml air setiap jam.", "Minum lima ratus mililiter air setiap jam."),
    Case("unit-en", "Drink 500ml of water.", "Drink five hundred millilitres of water."),
    Case("unit-ms", "Telefon ini ada 128GB storan.", "Telefon ini ada seratus dua puluh lapan gigabait storan."),
    Case(
        "unit-en",
        "This phone has 128GB of storage.",
        "This phone has one hundred and twenty eight gigabytes of storage.",
    ),
    Case("unit-ms", "Had laju ialah 110 km/j.", "Had laju ialah seratus sepuluh kilometer sejam."),
    Case(
        "unit-en",
        "The speed limit is 110 km/h.",
        "The speed limit is one hundred and ten kilometres per hour.",
    ),
    Case("unit-ms", "Saya nak beli 2kg beras.", "Saya nak beli dua kilogram beras."),
    Case("unit-en", "Add 1 kg of flour.", "Add one kilogram of flour."),
    Case("unit-ms", "Saiz rumah itu 1,200 sq ft.", "Saiz rumah itu seribu dua ratus kaki persegi."),
    Case(
        "unit-ms",
        "Cuaca panas, suhu mencecah 36 celsius.",
        "Cuaca panas, suhu mencecah tiga puluh enam darjah Celsius.",
    ),
    Case("unit-ms", "Sila tunggu 5 min.", "Sila tunggu lima minit."),
    Case("unit-en", "Please wait 5 mins.", "Please wait five minutes."),
    Case("unit-ms", "Pakej data 5-10GB sebulan.", "Pakej data lima hingga sepuluh gigabait sebulan."),
    # --- ranges -----------------------------------------------------------------------------------
    Case("range-ms", "Harga antara 100-200 ringgit.", "Harga antara seratus hingga dua ratus ringgit."),
    Case("range-en", "It takes 2-3 days.", "It takes two to three days."),
    Case("range-ms", "Ambil masa 2-3 hari.", "Ambil masa dua hingga tiga hari."),
    Case("range-ms", "Kedai buka Isnin-Jumaat.", "Kedai buka Isnin hingga Jumaat."),
    Case("range-en", "We are open Mon-Fri.", "We are open Monday to Friday."),
    Case("range-ms", "Kedai buka Isnin - Jumaat sahaja.", "Kedai buka Isnin hingga Jumaat sahaja."),
    # --- ordinals ---------------------------------------------------------------------------------
    Case("ordinal-ms", "Dia menang tempat ke-3.", "Dia menang tempat ketiga."),
    Case("ordinal-en", "She finished 3rd in the race.", "She finished third in the race."),
    Case("ordinal-ms", "Ini kali ke-1 saya ke sini.", "Ini kali pertama saya ke sini."),
    Case("ordinal-ms", "Sambutan ulang tahun ke-21.", "Sambutan ulang tahun kedua puluh satu."),
    Case("ordinal-en", "He came 21st out of 100.", "He came twenty first out of one hundred."),
    Case("ordinal-en", "The 100th customer wins a prize.", "The one hundredth customer wins a prize."),
    Case("ordinal-ms", "Rumah saya No. 5, Jalan Ampang.", "Rumah saya nombor lima, Jalan Ampang."),
    Case("ordinal-en", "Go to gate No. 12.", "Go to gate number twelve."),
    # --- letters with digits ----------------------------------------------------------------------
    Case(
        "alnum-ms",
        "Airbus A380 ialah pesawat terbesar.",
        "Airbus A tiga lapan kosong ialah pesawat terbesar.",
    ),
    Case("alnum-en", "The Airbus A380 is huge.", "The Airbus A three eight zero is huge."),
    Case(
        "alnum-ms",
        "Pesawat MH370 hilang pada tahun 2014.",
        "Pesawat M H tiga tujuh kosong hilang pada tahun dua ribu empat belas.",
    ),
    Case("alnum-en", "The 5G coverage is expanding.", "The five G coverage is expanding."),
    Case("alnum-ms", "Liputan 4G semakin meluas.", "Liputan empat G semakin meluas."),
    Case("alnum-ms", "Vaksin COVID-19 sudah tersedia.", "Vaksin covid sembilan belas sudah tersedia."),
    Case("alnum-en", "I bought a PS5 yesterday.", "I bought a P S five yesterday."),
    Case("alnum-ms", "Model iPhone15 baru dilancarkan.", "Model iPhone lima belas baru dilancarkan."),
    # --- acronyms and capitals --------------------------------------------------------------------
    Case("acronym-ms", "Caruman KWSP anda telah dikreditkan.", "Caruman K W S P anda telah dikreditkan."),
    Case("acronym-en", "Please contact LHDN for tax matters.", "Please contact L H D N for tax matters."),
    Case("acronym-en", "We use AI and API tools.", "We use A I and A P I tools."),
    Case("acronym-ms", "Pinjaman PTPTN perlu dibayar.", "Pinjaman P T P T N perlu dibayar."),
    Case("acronym-en", "NASA launched a rocket.", "Nasa launched a rocket."),
    Case("acronym-en", "The USA and UK signed the deal.", "The U S A and U K signed the deal."),
    Case("acronym-ms", "PETRONAS melaporkan keuntungan.", "Petronas melaporkan keuntungan."),
    Case("acronym-en", "THIS IS VERY IMPORTANT.", "this is very important."),
    Case("acronym-en", "Withdraw cash at any of our ATMs.", "Withdraw cash at any of our A T Ms."),
    # --- pronunciation overrides (bundled file) ---------------------------------------------------
    Case("override-ms", "Saya tinggal di KL.", "Saya tinggal di K L."),
    Case("override-ms", "Dr Ahmad akan tiba sebentar lagi.", "doktor Ahmad akan tiba sebentar lagi."),
    Case("override-en", "Dr. Lim is a cardiologist.", "doctor Lim is a cardiologist."),
    Case("override-ms", "Syarikat ABC Sdn Bhd telah ditubuhkan.", "Syarikat A B C Sendirian Berhad telah ditubuhkan."),
    Case("override-en", "OK, noted.", "okay, noted."),
    Case("override-en", "Bring snacks, e.g. chips.", "Bring snacks, for example chips."),
    # --- contractions -----------------------------------------------------------------------------
    Case("contraction-en", "I'm fine, thank you.", "I'm fine, thank you."),
    Case("contraction-en", "Don't forget the meeting at 3pm.", "Don't forget the meeting at three P M."),
    Case("contraction-en", "It’s raining again.", "It's raining again."),
    Case("contraction-en", "We can't go, it's too late.", "We can't go, it's too late."),
    Case("contraction-en", "I'll call you at 5pm.", "I'll call you at five P M."),
    # --- Malay shortforms -------------------------------------------------------------------------
    Case("shortform-ms", "Saya x tahu dia datang ke tidak.", "Saya tak tahu dia datang ke tidak."),
    Case("shortform-ms", "Barang yg saya beli dgn dia.", "Barang yang saya beli dengan dia."),
    Case("shortform-ms", "Budak2 sedang bermain.", "Budak-budak sedang bermain."),
    Case("shortform-ms", "Tolong tgk anak2 saya sekejap.", "Tolong tengok anak-anak saya sekejap."),
    # --- code-switched --------------------------------------------------------------------------
    Case(
        "mixed",
        "Saya nak pergi meeting esok pukul 3pm.",
        "Saya nak pergi meeting esok pukul tiga petang.",
    ),
    Case(
        "mixed",
        "Boleh tolong check email saya? Harga dia RM500 je.",
        "Boleh tolong check email saya? Harga dia lima ratus ringgit je.",
    ),
    Case("mixed", "Nanti I call you balik dalam 5 minit.", "Nanti I call you balik dalam lima minit."),
    Case(
        "mixed",
        "Thank you! Jumpa esok pukul 10 pagi.",
        "Thank you! Jumpa esok pukul sepuluh pagi.",
    ),
    Case(
        "mixed",
        "Your total is RM45.90. Terima kasih kerana membeli-belah.",
        "Your total is forty five ringgit ninety sen. Terima kasih kerana membeli-belah.",
    ),
    Case("mixed", "Saya ada 3 meeting hari ni.", "Saya ada tiga meeting hari ni."),
    Case(
        "mixed",
        "Dah transfer RM250 tadi, please check.",
        "Dah transfer dua ratus lima puluh ringgit tadi, please check.",
    ),
    Case(
        "mixed",
        "The price is RM20. Murah gila kan?",
        "The price is twenty ringgit. Murah gila kan?",
    ),
    # --- markdown and HTML ------------------------------------------------------------------------
    Case("markup", "**Harga:** RM500", "Harga: lima ratus ringgit"),
    Case("markup", "# Welcome\nWe have 3 plans.", "Welcome. We have three plans."),
    Case("markup", "- 2 cawan tepung\n- 1 biji telur", "dua cawan tepung. satu biji telur."),
    Case("markup", "Click [here](https://example.com) to pay RM10.", "Click here to pay ten ringgit."),
    Case("markup", "<p>Jumlah bayaran anda: <b>RM99</b></p>", "Jumlah bayaran anda: sembilan puluh sembilan ringgit"),
    Case("markup", "Use `pip install` to set it up.", "Use pip install to set it up."),
    Case(
        "markup",
        "## Langkah\n1. Buka aplikasi\n2. Tekan *Bayar*",
        "Langkah. Buka aplikasi. Tekan Bayar.",
    ),
    # --- other scripts and emoji ------------------------------------------------------------------
    Case("zh", "我有3只猫", "我有三只猫"),
    Case("script", "வணக்கம் நண்பரே", "வணக்கம் நண்பரே"),
    Case("script", "مرحبا بكم", "مرحبا بكم"),
    Case("emoji", "Terima kasih 🙏", "Terima kasih"),
    Case("emoji", "Saya suka makan 🍜 dengan kawan.", "Saya suka makan dengan kawan."),
    Case("script", "Dia beli 2 buku 中文 semalam.", "Dia beli dua buku 中文 semalam."),
    # --- whitespace -------------------------------------------------------------------------------
    Case("space", "Hello   world\n\n\nHow are you?", "Hello world. How are you?"),
    Case("space", "  Saya   suka   kucing.  ", "Saya suka kucing."),
    Case("space", "line one\ncontinues here", "line one continues here"),
    # --- symbols and fractions --------------------------------------------------------------------
    Case("symbol-ms", "Ali & Abu pergi ke pasar.", "Ali dan Abu pergi ke pasar."),
    Case("symbol-en", "Salt & pepper please.", "Salt and pepper please."),
    Case("symbol-en", "About 2/3 of voters agreed.", "About two thirds of voters agreed."),
    Case("symbol-ms", "Kira-kira 2/3 pengundi bersetuju.", "Kira-kira dua per tiga pengundi bersetuju."),
    Case("symbol-en", "We are open 24/7.", "We are open twenty four seven."),
    Case("symbol-en", "Each student and/or parent must sign.", "Each student and or parent must sign."),
    Case("symbol-en", "Add 1/2 cup of sugar.", "Add one half cup of sugar."),
    # --- codes, addresses and other readings found in agent replies ------------------------------
    Case(
        "code-en",
        "Your OTP is 482913. Do not share it.",
        "Your O T P is four eight two nine one three. Do not share it.",
    ),
    Case("code-ms", "Kod OTP anda ialah 482913.", "Kod O T P anda ialah empat lapan dua sembilan satu tiga."),
    Case(
        "address-ms",
        "Alamat: No. 12-3, Jalan SS2/24, 47300 Petaling Jaya.",
        "Alamat: nombor dua belas dash tiga, Jalan S S dua slash dua puluh empat, empat tujuh tiga kosong kosong "
        "Petaling Jaya.",
    ),
    Case("money-ms", "Dia beli 3 helai baju @ RM20.", "Dia beli tiga helai baju pada dua puluh ringgit."),
    Case("money-ms", "Harga durian RM20/kg sekarang.", "Harga durian dua puluh ringgit per kilogram sekarang."),
    Case("money-en", "The hotel is RM350/night.", "The hotel is three hundred and fifty ringgit per night."),
    Case("symbol-ms", "Nama: Siti binti Ahmad @ Hassan.", "Nama: Siti binti Ahmad alias Hassan."),
    Case("number-en", "We have a 50-50 chance.", "We have a fifty fifty chance."),
    Case("date-ms", "Pada 10/4 kami bercuti.", "Pada sepuluh April kami bercuti."),
    Case("date-ms", "Sila bayar sebelum 31/12.", "Sila bayar sebelum tiga puluh satu Disember."),
    Case("symbol-en", "I give it 8/10.", "I give it eight out of ten."),
    Case("time-ms", "Mesyuarat bermula pukul 0800.", "Mesyuarat bermula pukul lapan pagi."),
    Case("time-en", "The briefing is at 1400hrs.", "The briefing is at two P M."),
    Case("symbol-en", "The screen ratio is 16:9.", "The screen ratio is sixteen to nine."),
    Case("symbol-ms", "Luas bilik 3 × 4 meter.", "Luas bilik tiga darab empat meter."),
    Case("code-en", "In an emergency, call 999.", "In an emergency, call nine nine nine."),
    Case(
        "symbol-en",
        "Rated 4.5/5 stars by 1,000+ customers.",
        "Rated four point five out of five stars by one thousand plus customers.",
    ),
    Case("symbol-ms", "Markah saya 85/100.", "Markah saya lapan puluh lima daripada seratus."),
    Case("acronym-en", "I live in the U.S.", "I live in the U S."),
]
