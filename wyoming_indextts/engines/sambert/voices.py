"""The voices the NLS REST gateway documents, and each language's default."""

from __future__ import annotations

VOICE_PREFIX = "sambert-"

# (id, languages, English description) for the voices the REST gateway documents. Languages:
# "zh" Mandarin, "en" English, "yue" Cantonese, "ja" Japanese. Ordered so that the first voice
# listing a language is that language's default: a caller that simply takes the first match
# gets the same voice as voice_for_language().
VOICES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("xiaoyun", ("zh",), "Xiaoyun: standard female Mandarin voice, handles mixed-in English"),
    ("xiaogang", ("zh",), "Xiaogang: standard male Mandarin voice, handles mixed-in English"),
    ("abby", ("en",), "Abby: female American English voice"),
    ("andy", ("en",), "Andy: male American English voice"),
    ("harry", ("en",), "Harry: male British English voice"),
    ("eric", ("en",), "Eric: male British English voice"),
    ("emily", ("en",), "Emily: female British English voice"),
    ("luna", ("en",), "Luna: female British English voice"),
    ("luca", ("en",), "Luca: male British English voice"),
    ("wendy", ("en",), "Wendy: female British English voice"),
    ("william", ("en",), "William: male British English voice"),
    ("olivia", ("en",), "Olivia: female British English voice"),
    ("shanshan", ("yue",), "Shanshan: female Cantonese voice"),
    ("jiajia", ("yue",), "Jiajia: female Cantonese voice"),
    ("taozi", ("yue",), "Taozi: female Cantonese voice"),
    ("tomoka", ("ja",), "Tomoka: female Japanese voice"),
    ("tomoya", ("ja",), "Tomoya: male Japanese voice"),
    ("ruoxi", ("zh", "en"), "Ruoxi: gentle female Mandarin voice"),
    ("siqi", ("zh", "en"), "Siqi: gentle female Mandarin voice"),
    ("sijia", ("zh", "en"), "Sijia: standard female Mandarin voice"),
    ("sicheng", ("zh", "en"), "Sicheng: standard male Mandarin voice"),
    ("siyue", ("zh", "en"), "Siyue: gentle female Mandarin voice (customer service)"),
    ("xiaomei", ("zh", "en"), "Xiaomei: sweet female Mandarin voice (customer service)"),
    ("aixia", ("zh", "en"), "Aixia: friendly female Mandarin voice (customer service)"),
    ("aiqi", ("zh", "en"), "Aiqi: gentle female Mandarin voice"),
    ("aijia", ("zh", "en"), "Aijia: standard female Mandarin voice"),
    ("aicheng", ("zh", "en"), "Aicheng: standard male Mandarin voice"),
    ("aida", ("zh", "en"), "Aida: standard male Mandarin voice"),
    ("aiya", ("zh", "en"), "Aiya: stern female Mandarin voice (customer service)"),
    ("aimei", ("zh", "en"), "Aimei: sweet female Mandarin voice (customer service)"),
    ("aiyu", ("zh", "en"), "Aiyu: natural female Mandarin voice (customer service)"),
    ("aiyue", ("zh", "en"), "Aiyue: gentle female Mandarin voice (customer service)"),
    ("aijing", ("zh", "en"), "Aijing: stern female Mandarin voice (customer service)"),
    ("zhiqi", ("zh", "en"), "Zhiqi: gentle female Mandarin voice (premium)"),
    ("zhichu", ("zh", "en"), "Zhichu: male Mandarin voice for food and news narration (premium)"),
    ("zhixiang", ("zh", "en"), "Zhixiang: deep male Mandarin narration voice (premium)"),
    ("zhijia", ("zh", "en"), "Zhijia: standard female Mandarin news voice (premium)"),
    ("zhinan", ("zh", "en"), "Zhinan: male Mandarin advertising voice (premium)"),
    ("zhiqian", ("zh", "en"), "Zhiqian: female Mandarin news and narration voice (premium)"),
    ("zhiru", ("zh", "en"), "Zhiru: female Mandarin news voice (premium)"),
    ("zhide", ("zh", "en"), "Zhide: male Mandarin news voice (premium)"),
    ("zhiwei", ("zh", "en"), "Zhiwei: young girl's Mandarin voice (premium)"),
)

LANGUAGE_DEFAULTS: dict[str, str] = {
    "zh": "xiaoyun",
    "en": "abby",      # American English: Home Assistant's most common English locale
    "en-gb": "emily",
    "yue": "shanshan",
    "zh-hk": "shanshan",  # Hong Kong and Macau Chinese is spoken Cantonese
    "zh-mo": "shanshan",
    "ja": "tomoka",
}
