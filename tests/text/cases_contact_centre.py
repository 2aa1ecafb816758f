"""What a contact centre's prompts and replies say, as classes of misreading found by reading them (2026-12-08).
Each expected reading checked by hand.

Phone keys in IVR prompts and USSD codes (`app/text/rules/keypad.py`): "*" was dropped as stray markdown and "#"
passed through unread, so "Press * then #" was spoken "Press then #".

Malay says "bintang" and "pagar" (the keys' Malay names), Chinese "星号" and "井号"; a USSD code is read key by key.
A "*" on a word (emphasis, a footnote) is still markup, and "#12", "C#" and hashtags are not keys.
Units: a unit before a slash was left unread ("5 g/L" was "five g per litre"), and "ms" after a number was not a unit
in English ("200 ms").

Codes in groups: a verification code or reference written with a dash was read as a range ("Kod pengesahan anda
ialah 123-456" was "seratus dua puluh tiga hingga empat ratus lima puluh enam"; "TX-2026-00451" had a "to"); after a
word that names a code, its groups are read digit by digit with a pause between them, and a dash after a lettered
code is no "to". "order 100-200" is a range (its "100" was read as a code).

Opening hours: "pg" after an hour is "pagi" in Malay, a dash after a part of day is a range ("9 pagi - 6 petang" was
"sembilan pagi, enam petang"), and "0900-1700" are times. A weekday written short before a date is said in full
("Mon, 12 Jan"), and a month written short with no date after "bulan" or "until" ("bulan Nov"). Postcodes after
"postcode"/"poskod", a card's last digits, "p.a.", "incl.", "appt", "msgs", "TQ" in capitals, "/mo", "±", "50/50", a
balance owed ("-RM12.30" lost its sign), seconds ("wait 10-15s"; "30s" stays a decade), "/min", a card "ending with"
its digits, a postcode before a state's letters ("50400 KL").

Chinese: an order number or verification code was read as a cardinal ("验证码：482913" was "四十八万二千九百一十三");
after a word naming a code, and in a lettered code ("A12345", "MH370"), the digits are read one by one; "5G" was
"五克" (five grams); a temperature below zero lost its sign ("-5°C": 零下五度).
"""

from __future__ import annotations

from tests.text.cases import Case

CONTACT_CASES: list[Case] = [
    # --- a key on its own ----------------------------------------------------------------------------------
    Case("keys-en", "Press * then #.", "Press star then hash."),
    Case("keys-en", "Press * to repeat this menu, or # to go back.", "Press star to repeat this menu, or hash to go back."),
    Case("keys-en", "Enter your PIN followed by the # key.", "Enter your pin followed by the hash key."),
    Case("keys-en", "To speak to an agent, press #", "To speak to an agent, press hash"),
    Case("keys-ms", "Tekan # untuk teruskan.", "Tekan pagar untuk teruskan."),
    Case("keys-ms", "Tekan * untuk kembali ke menu utama.", "Tekan bintang untuk kembali ke menu utama."),
    Case(
        "keys-ms",
        "Sila tekan 1 untuk Bahasa Melayu, atau tekan * untuk ulang.",
        "Sila tekan satu untuk Bahasa Melayu, atau tekan bintang untuk ulang.",
    ),
    Case("keys-zh", "请按#号键结束。", "请按井号键结束。"),
    Case("keys-zh", "请按*键返回主菜单。", "请按星号键返回主菜单。"),
    # --- a USSD code, key by key -------------------------------------------------------------------------
    Case("keys-ms", "Dail *888# untuk semak baki.", "Dail bintang lapan lapan lapan pagar untuk semak baki."),
    Case("keys-en", "Dial *100*5# to check your balance.", "Dial star one zero zero star five hash to check your balance."),
    Case("keys-en", "To see your IMEI, dial *#06#.", "To see your I M E I, dial star hash zero six hash."),
    Case("keys-zh", "请拨打*100#查询余额。", "请拨打星号一零零井号查询余额。"),
    # --- a product, and what is not a key ----------------------------------------------------------------
    Case("keys-en", "The answer is 5 * 3.", "The answer is five times three."),
    Case("keys-en", "Your order #A12345 ships today.", "Your order number A one two three four five ships today."),
    Case("keep-en", "Ticket #12345 is open.", "Ticket number one two three four five is open."),
    Case("keep-en", "Terms apply*.", "Terms apply."),
    Case("keep-en", "This is *really* important.", "This is really important."),
    Case("keep-en", "We write it in C# and F# only.", "We write it in C# and F# only."),
    Case("keep-en", "Options: * Check balance * Pay bill", "Options: Check balance Pay bill"),
    # --- a unit before a slash is read with it; "ms" after a number is milliseconds in English only --------------
    Case("unit-en", "Add 5 g/L of salt.", "Add five grams per litre of salt."),
    Case("unit-ms", "Dos 5 mg/kg sehari.", "Dos lima miligram per kilogram sehari."),
    Case("unit-en", "The wind reached 30 m/s.", "The wind reached thirty metres per second."),
    Case("unit-en", "The latency is 200 ms on average.", "The latency is two hundred milliseconds on average."),
    Case("unit-ms", "Laporan itu 300 ms panjangnya.", "Laporan itu tiga ratus ms panjangnya."),
    # --- codes in groups -------------------------------------------------------------------------------------
    Case("code-ms", "Kod pengesahan anda ialah 123-456.", "Kod pengesahan anda ialah satu dua tiga, empat lima enam."),
    Case("code-ms", "No. rujukan anda 2026-00451.", "nombor rujukan anda dua kosong dua enam, kosong kosong empat lima satu."),
    Case("code-ms", "TAC anda 482-913, jangan kongsi.", "T A C anda empat lapan dua, sembilan satu tiga, jangan kongsi."),
    Case("code-en", "Your OTP is 123-456.", "Your O T P is one two three, four five six."),
    Case("code-en", "Your booking ref is 2024-00451.", "Your booking ref is two zero two four, zero zero four five one."),
    Case("code-en", "Ref: TX-2026-00451", "Ref: T X two zero two six, zero zero four five one"),
    Case("code-en", "Verification code: 4829", "Verification code: four eight two nine"),
    Case("code-ms", "Poskod: 47300", "Poskod: empat tujuh tiga kosong kosong"),
    Case("keep-en", "Please order 100-200 units.", "Please order one hundred to two hundred units."),
    Case("keep-en", "We need 1000-1200 people.", "We need one thousand to twelve hundred people."),
    Case("keep-en", "Covid-19 cases rose 100-200 a day.", "Covid nineteen cases rose one hundred to two hundred a day."),
    # --- opening hours and dates -----------------------------------------------------------------------------
    Case("hours-ms", "Waktu operasi 9 pg - 6 ptg, Isnin-Jumaat.", "Waktu operasi sembilan pagi hingga enam petang, Isnin hingga Jumaat."),
    Case("hours-ms", "Kedai buka 9 pg hingga 6 ptg.", "Kedai buka sembilan pagi hingga enam petang."),
    Case("hours-ms", "Buka jam 9 pagi - 6 petang", "Buka jam sembilan pagi hingga enam petang"),
    Case("hours-ms", "Sila datang sebelum 5.30ptg.", "Sila datang sebelum lima tiga puluh minit petang."),
    Case("hours-ms", "Buka 8.30pg - 5.30ptg setiap hari.", "Buka lapan tiga puluh minit pagi hingga lima tiga puluh minit petang setiap hari."),
    Case("hours-ms", "Waktu: 9.00 pg - 5.00 ptg", "Waktu: sembilan pagi hingga lima petang"),
    Case("hours-en", "Open 0900-1700 daily.", "Open nine A M to five P M daily."),
    Case("hours-en", "Open 9 am - 5 pm on weekdays.", "Open nine A M to five P M on weekdays."),
    Case("keep-ms", "Sila lihat pg 5.", "Sila lihat pg lima."),
    Case("date-en", "Your appointment is on Mon, 12 Jan at 2:30pm.", "Your appointment is on Monday, the twelfth of January at two thirty P M."),
    Case("date-en", "Delivery on Fri 3/5/2026.", "Delivery on Friday the third of May twenty twenty six."),
    Case("date-ms", "Temujanji pada Sat, 14 Feb.", "Temujanji pada Sabtu, empat belas Februari."),
    Case("keep-en", "I sat 12 hours in the queue.", "I sat twelve hours in the queue."),
    # --- small tables --------------------------------------------------------------------------------------
    Case("abbr-en", "The rate is 4% p.a. for new customers.", "The rate is four percent per annum for new customers."),
    Case("abbr-ms", "Kadar 3.5% p.a. untuk pinjaman.", "Kadar tiga perpuluhan lima peratus setahun untuk pinjaman."),
    Case("chat-en", "You have 3 unread msgs.", "You have three unread messages."),
    Case("code-en", "Last 4 digits of your card: 5678.", "Last four digits of your card: five six seven eight."),
    Case("date-ms", "Bil elektrik anda untuk bulan Nov ialah RM 123.45.", "Bil elektrik anda untuk bulan November ialah seratus dua puluh tiga ringgit empat puluh lima sen."),
    Case("date-en", "The promo runs until Dec.", "The promo runs until December."),
    Case("keep-en", "A gift from Jan.", "A gift from Jan."),
    # --- Chinese codes ---------------------------------------------------------------------------------------
    Case("zh", "您的订单号是12345。", "您的订单号是一二三四五。"),
    Case("zh", "您的订单号是A12345，预计3-5个工作日送达。", "您的订单号是A一二三四五，预计三到五个工作日送达。"),
    Case("zh", "验证码：482913", "验证码：四八二九一三"),
    Case("zh", "密码是1234，请勿告诉他人。", "密码是一二三四，请勿告诉他人。"),
    Case("zh", "航班MH370延误两小时。", "航班MH三七零延误两小时。"),
    Case("zh", "共有12345人参加。", "共有一万二千三百四十五人参加。"),
    Case("zh", "我们支持5G网络。", "我们支持五G网络。"),
    # --- more small ones ------------------------------------------------------------------------------------
    Case("money-en", "Balance: -RM12.30", "Balance: minus twelve ringgit thirty sen"),
    Case("money-ms", "Baki anda -RM5.00 selepas caj.", "Baki anda negatif lima ringgit selepas caj."),
    Case("money-en", "Your plan: 50GB @ RM65/mo.", "Your plan: fifty gigabytes at sixty five ringgit per month."),
    Case("abbr-en", "Your total is RM 49.90 (incl. 8% SST).", "Your total is forty nine ringgit ninety sen (including eight percent S S T)."),
    Case("abbr-ms", "Sila tunggu ±5 minit.", "Sila tunggu lebih kurang lima minit."),
    Case("abbr-en", "Accuracy is ±2%.", "Accuracy is plus or minus two percent."),
    Case("abbr-en", "It's 50/50 whether it arrives today.", "It's fifty fifty whether it arrives today."),
    Case("chat-en", "Ok, noted. TQ!", "okay, noted. Thank you!"),
    Case("chat-en", "Mr. Lim's appt is at 3pm.", "mister Lim's appointment is at three P M."),
    Case("unit-en", "Wait 10-15s and try again.", "Wait ten to fifteen seconds and try again."),
    Case("unit-en", "Retry in 5s.", "Retry in five seconds."),
    Case("keep-en", "She is in her 30s.", "She is in her thirties."),
    Case("keep-en", "I have an iPhone 5s at home.", "I have an iPhone five s at home."),
    Case("money-en", "Rate: RM0.15/min", "Rate: fifteen sen per minute"),
    Case("code-en", "Your card ending with 5521 is blocked.", "Your card ending with five five two one is blocked."),
    Case("code-ms", "Kad anda berakhir dengan 0042.", "Kad anda berakhir dengan kosong kosong empat dua."),
    Case("keep-en", "I agree with 100 people here.", "I agree with one hundred people here."),
    Case("code-ms", "Lot 5, Jln Tun Razak, 50400 KL.", "Lot lima, Jalan Tun Razak, lima kosong empat kosong kosong K L."),
    Case("idno-en", "Please provide your IC no.", "Please provide your I C number."),
    Case("idno-en", "Please provide your passport no. and name.", "Please provide your passport number and name."),
    Case("idno-en", "What is your phone no.?", "What is your phone number?"),
    Case("idno-en", "Your no. is 012-345 6789, correct?", "Your number is zero one two, three four five, six seven eight nine, correct?"),
    Case("idno-ms", "Sila berikan IC no. anda.", "Sila berikan nombor I C anda."),
    Case("keep-en", "Your account no longer exists.", "Your account no longer exists."),
    Case("date-en", "Can you confirm your DOB? Format DD/MM/YYYY.", "Can you confirm your D O B? Format day, month, year."),
    Case("date-ms", "Sila masukkan tarikh lahir (DD/MM/YYYY).", "Sila masukkan tarikh lahir (hari, bulan, tahun)."),
    Case("date-en", "Card expiry (MM/YY): 08/27", "Card expiry (month, year): August twenty twenty seven"),
    Case("date-en", "Your card expires 03/28.", "Your card expires March twenty twenty eight."),
    Case("date-ms", "Tarikh luput kad: 12/29.", "Tarikh luput kad: Disember dua ribu dua puluh sembilan."),
    Case("zh", "今天温度是-5°C。", "今天温度是零下五度。"),
    Case("zh", "区间3-5kg。", "区间三到五公斤。"),
    Case("emoji", "Sorry for the inconvenience caused :(", "Sorry for the inconvenience caused"),
    Case("emoji", "Thanks! :) See you soon.", "Thanks! See you soon."),
    Case("keep-en", "Note:(see below) the fee applies.", "Note:(see below) the fee applies."),
    Case("abbr-en", "Your a/c has been credited.", "Your account has been credited."),
    Case("abbr-ms", "Baki a/c anda RM5.", "Baki akaun anda lima ringgit."),
    Case("abbr-en", "W.e.f. 1 Jan 2027, rates will change.", "with effect from the first of January twenty twenty seven, rates will change."),
    Case("chat-en", "Order qty: 3 pcs @ RM12 each", "Order quantity: three pieces at twelve ringgit each"),
]
