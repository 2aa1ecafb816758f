"""Phone keys in IVR prompts and USSD codes (`app/text/rules/keypad.py`): "*" was dropped as stray markdown and "#"
passed through unread, so "Press * then #" was spoken "Press then #". Each expected reading checked by hand.

Malay says "bintang" and "pagar" (the keys' Malay names), Chinese "星号" and "井号"; a USSD code is read key by key.
A "*" on a word (emphasis, a footnote) is still markup, and "#12", "C#" and hashtags are not keys.
Also two unit misreadings found beside them: a unit before a slash was left unread ("5 g/L" was "five g per litre"),
and "ms" after a number was not a unit in English ("200 ms").
"""

from __future__ import annotations

from tests.text.cases import Case

KEY_CASES: list[Case] = [
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
    # --- a unit before a slash is read with it; "ms" after a number is milliseconds in English only --------------
    Case("unit-en", "Add 5 g/L of salt.", "Add five grams per litre of salt."),
    Case("unit-ms", "Dos 5 mg/kg sehari.", "Dos lima miligram per kilogram sehari."),
    Case("unit-en", "The wind reached 30 m/s.", "The wind reached thirty metres per second."),
    Case("unit-en", "The latency is 200 ms on average.", "The latency is two hundred milliseconds on average."),
    Case("unit-ms", "Laporan itu 300 ms panjangnya.", "Laporan itu tiga ratus ms panjangnya."),
]
