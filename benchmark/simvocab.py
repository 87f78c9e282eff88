"""Vocabulary tables for the seeded sticker-corpus simulator.

Pure data: visual style parts, sticker meanings with user paraphrases,
famous character names, syllables for procedurally named long-tail
characters, entity nouns and modifiers, OCR chat fillers and query noise.
All strings are lowercase ASCII using only letters, digits, spaces and
apostrophes.  Call ``check()`` to validate the invariants; nothing runs
at import time.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------
# 1. Visual styles: treatment x medium
# ---------------------------------------------------------------------------

STYLE_TREATMENTS: tuple[str, ...] = (
    "cute",
    "retro",
    "neon",
    "pastel",
    "minimalist",
    "bold",
    "glossy",
    "sketchy",
    "grainy",
    "chunky",
    "kawaii",
    "dreamy",
    "gritty",
    "vintage",
    "flat",
)

STYLE_MEDIA: tuple[str, ...] = (
    "cartoon",
    "pixel art",
    "3d render",
    "line art",
    "watercolor",
    "clay",
    "doodle",
    "photo meme",
    "comic",
    "text card",
)

MIN_STYLE_PAIRS: int = 140

# ---------------------------------------------------------------------------
# 2. Meanings: (canonical label, paraphrase, ...)
# ---------------------------------------------------------------------------

MEANINGS: tuple[tuple[str, ...], ...] = (
    # greetings and partings
    ("thanks", "thank you", "thx", "ty", "much appreciated", "thanks a lot"),
    ("good morning", "morning", "gm", "rise and shine", "morning all"),
    ("good afternoon", "afternoon greetings", "happy afternoon", "good aft"),
    ("good evening", "evening", "lovely evening", "evening all"),
    ("good night", "night night", "gn", "sweet dreams", "nighty night"),
    ("hello", "hi", "hey", "hiya", "yo"),
    ("goodbye", "bye", "see ya", "bye bye", "later", "cya"),
    ("how are you", "how r u", "hru", "how's it going", "you good"),
    ("welcome", "welcome aboard", "welcome new friend", "glad you're here",
     "welcome to the group"),
    ("have a nice day", "have a good day", "nice day", "enjoy your day"),
    ("take care", "tc", "look after yourself", "take it easy"),
    # replies
    ("ok", "okay", "k", "alright", "sure", "got it"),
    ("yes", "yep", "yeah", "yup", "of course"),
    ("no", "no thanks", "pass", "not for me", "i'll pass"),
    ("no way", "nope", "not happening", "absolutely not", "no chance"),
    ("agree", "agreed", "same", "exactly", "true that", "so true"),
    ("disagree", "not really", "i don't think so", "nah"),
    ("received", "noted", "copy that", "roger", "message received"),
    ("you're welcome", "yw", "no worries", "anytime", "my pleasure"),
    ("fine", "i'm fine", "all good", "no problem", "np"),
    ("no idea", "idk", "dunno", "beats me", "no clue"),
    ("wait", "hold on", "one sec", "hang on", "just a moment"),
    ("be right back", "brb", "back in a bit", "afk"),
    ("question", "i have a question", "quick question", "can i ask",
     "question mark"),
    ("thumbs up", "like", "nice", "approved", "good job"),
    ("thumbs down", "dislike", "not good", "boo"),
    ("on my way", "omw", "coming", "be there soon", "heading out"),
    ("running late", "late again", "sorry i'm late", "stuck in traffic"),
    ("what are you doing", "wyd", "what's up", "sup", "whatcha doing"),
    ("where are you", "where r u", "wya", "location please"),
    ("call me", "give me a call", "ring me", "phone me"),
    ("waiting", "still waiting", "waiting for you", "so slow", "hurry up"),
    ("apology", "sorry", "my bad", "so sorry", "forgive me", "my apologies"),
    ("help", "help me", "sos", "save me", "need help"),
    ("pray", "praying", "please please", "begging", "pretty please"),
    ("respect", "salute", "much respect", "respect to you", "hats off"),
    ("clap", "applause", "clapping", "bravo", "encore"),
    ("amazing", "wow", "incredible", "mind blown", "unbelievable"),
    ("cool", "so cool", "awesome", "epic", "nice one"),
    ("you're the best", "ur the best", "best ever", "legend", "goat"),
    ("surprise", "surprise surprise", "ta da", "tada", "guess what"),
    # emotions
    ("happy", "so happy", "joyful", "yay", "feeling good"),
    ("sad", "so sad", "feeling down", "unhappy", "down bad"),
    ("crying", "cry", "tears", "sobbing", "wah"),
    ("laughing", "lmao", "rofl", "dying of laughter", "so funny"),
    ("angry", "mad", "furious", "so angry", "pissed off", "fuming"),
    ("speechless", "no words", "at a loss for words", "dot dot dot",
     "i have nothing to say"),
    ("shocked", "shook", "what", "jaw drop", "stunned"),
    ("confused", "huh", "i'm confused", "what's going on", "puzzled"),
    ("embarrassed", "awkward", "so awkward", "cringe", "blushing"),
    ("shy", "bashful", "so shy", "hiding face"),
    ("proud", "so proud", "proud of you", "nailed it"),
    ("bored", "so bored", "boring", "nothing to do", "meh"),
    ("tired", "exhausted", "worn out", "drained", "dead tired"),
    ("excited", "so excited", "hyped", "can't wait", "pumped"),
    ("nervous", "anxious", "stressed", "panicking", "sweating"),
    ("scared", "afraid", "terrified", "spooked", "so scary"),
    ("jealous", "envious", "so jealous", "envy"),
    ("annoyed", "irritated", "ugh", "so annoying", "fed up"),
    ("disgusted", "gross", "eww", "yuck", "disgusting"),
    ("lonely", "all alone", "forever alone", "so lonely"),
    ("heartbroken", "broken heart", "heartbreak", "my heart hurts"),
    ("grateful", "so grateful", "thankful", "blessed to have you"),
    ("adorable", "so adorable", "too cute", "aww", "precious"),
    ("cheer up", "don't be sad", "chin up", "it'll be okay", "you got this"),
    ("keep going", "jiayou", "add oil", "don't give up", "fighting"),
    ("i'm done", "done", "over it", "i give up", "so done"),
    ("chill", "relax", "calm down", "take a breath", "chill out"),
    ("sick", "feeling sick", "under the weather", "got a cold", "ill"),
    # love and affection
    ("love you", "i love you", "ily", "luv u", "love ya"),
    ("miss you", "missing you", "i miss you", "miss u"),
    ("hug", "hugs", "big hug", "virtual hug", "come here"),
    ("kiss", "kisses", "mwah", "xoxo", "smooch"),
    ("sweetheart", "honey", "babe", "my love", "darling"),
    ("heart eyes", "crush", "in love", "smitten", "so in love"),
    ("flirting", "wink", "hey cutie", "sliding in", "flirty"),
    ("date night", "let's go out", "date", "romantic dinner"),
    ("marry me", "will you marry me", "proposal", "be mine"),
    ("single", "single dog", "still single", "no partner", "single life"),
    ("happy valentine's day", "valentine's day", "valentines",
     "be my valentine"),
    ("qixi festival", "chinese valentine's day", "happy qixi",
     "double seventh"),
    # teasing and banter
    ("teasing", "hehe", "gotcha", "just kidding", "jk"),
    ("smug", "smirk", "heh", "feeling smug", "too easy"),
    ("eye roll", "rolling eyes", "whatever", "yeah right", "sure jan"),
    ("facepalm", "face palm", "smh", "oh no not again", "seriously"),
    ("silly", "so silly", "dummy", "goofball", "you silly"),
    ("shut up", "stfu", "be quiet", "zip it", "hush"),
    ("get lost", "go away", "leave me alone", "buzz off", "scram"),
    ("bring it on", "come at me", "fight me", "let's go", "try me"),
    ("victory", "we won", "winner", "champion", "gg"),
    ("fail", "epic fail", "i failed", "lost again", "rip"),
    ("high five", "hi five", "up top", "gimme five"),
    # work and school
    ("busy", "so busy", "swamped", "no time", "busy busy"),
    ("working overtime", "overtime", "ot again", "still at the office",
     "996"),
    ("monday blues", "hate mondays", "monday again", "case of the mondays"),
    ("off work", "clocking out", "work is over", "finally off", "home time"),
    ("payday", "pay day", "got paid", "salary day", "money came in"),
    ("broke", "no money", "wallet empty", "so broke", "poor me"),
    ("meeting", "in a meeting", "meeting again", "conference call",
     "zoom call"),
    ("deadline", "due tomorrow", "deadline panic", "rushing deadline"),
    ("slacking off", "slacking", "fishing at work", "lazy at work", "moyu"),
    ("exam", "exam time", "finals", "test tomorrow", "exam stress"),
    ("studying", "study mode", "hitting the books", "cramming",
     "homework time"),
    ("lazy", "so lazy", "couch potato", "don't want to move", "lazybones"),
    # food and drink
    ("hungry", "so hungry", "starving", "feed me", "need food"),
    ("eat", "let's eat", "time to eat", "dinner time", "chow time"),
    ("delicious", "yummy", "so tasty", "tasty", "nom nom"),
    ("milk tea", "boba", "bubble tea", "boba time"),
    ("tea time", "afternoon tea", "time for tea", "tea break"),
    ("my treat", "it's on me", "i'm buying", "treat you"),
    ("diet", "on a diet", "losing weight", "cutting carbs"),
    ("cheers", "bottoms up", "kampai", "ganbei", "raise a glass"),
    ("drink more water", "stay hydrated", "drink water", "hydrate"),
    # sleep
    ("sleepy", "so sleepy", "tired eyes", "need sleep", "zzz", "drowsy"),
    ("go to sleep", "bedtime", "time for bed", "go to bed", "sleep now"),
    ("can't sleep", "insomnia", "awake at 3am", "sleepless", "up all night"),
    ("wake up", "get up", "wakey wakey", "rise up"),
    ("nap", "nap time", "power nap", "quick nap"),
    # daily life
    ("workout", "gym time", "exercise", "lets work out", "gains"),
    ("party", "party time", "let's party", "party hard", "celebrate"),
    ("hot weather", "so hot", "melting", "heatwave", "too hot"),
    ("cold weather", "freezing", "so cold", "brrr", "chilly"),
    ("rainy day", "it's raining", "rain again", "bring an umbrella"),
    ("shopping", "shop till you drop", "retail therapy", "add to cart",
     "double eleven"),
    ("travel", "vacation", "holiday trip", "road trip", "on vacation"),
    ("selfie", "pic of me", "photo time", "say cheese"),
    ("weekend", "weekend vibes", "enjoy your weekend", "tgif",
     "weekend mode"),
    # festivals and blessings
    ("happy birthday", "hbd", "bday wishes", "happy bday", "birthday wishes"),
    ("congratulations", "congrats", "grats", "well done", "congrats to you"),
    ("good luck", "gl", "best of luck", "fingers crossed", "break a leg"),
    ("happy new year", "hny", "new year wishes", "happy new yr"),
    ("happy spring festival", "chinese new year", "lunar new year", "cny",
     "spring festival wishes"),
    ("happy lantern festival", "lantern festival", "yuanxiao",
     "lantern wishes"),
    ("mid autumn festival", "mooncake festival", "happy mid autumn",
     "moon festival"),
    ("dragon boat festival", "happy duanwu", "zongzi festival",
     "dragon boat wishes"),
    ("happy national day", "national day", "golden week",
     "happy golden week"),
    ("merry christmas", "xmas", "happy christmas", "christmas wishes",
     "merry xmas"),
    ("happy thanksgiving", "thanksgiving", "turkey day", "give thanks"),
    ("happy halloween", "halloween", "trick or treat", "spooky season"),
    ("happy holidays", "season's greetings", "holiday wishes",
     "enjoy the holidays"),
    ("happy mother's day", "mother's day", "love you mom", "best mom"),
    ("happy father's day", "father's day", "best dad", "love you dad"),
    ("happy teachers day", "teachers day", "thank you teacher",
     "best teacher"),
    ("get rich", "wishing you wealth", "gong xi fa cai", "prosperity",
     "fortune comes"),
    ("god of wealth", "caishen", "money rolling in", "lucky money"),
    ("good health", "stay healthy", "wishing you health", "be well",
     "health and peace"),
    ("peace and safety", "safe and sound", "stay safe",
     "peace be with you"),
    ("blessing", "blessings", "best wishes", "bless you", "wishing you well"),
    ("long life", "longevity", "live long", "many happy returns"),
    ("family happiness", "happy family", "family reunion",
     "reunion wishes"),
)

MEANING_COUNT: int = 150
MIN_PARAPHRASES: int = 3
MAX_PARAPHRASES: int = 6

BLESSING_MEANINGS: frozenset[str] = frozenset({
    "good morning",
    "good afternoon",
    "good evening",
    "have a nice day",
    "happy new year",
    "happy spring festival",
    "happy lantern festival",
    "mid autumn festival",
    "dragon boat festival",
    "happy national day",
    "merry christmas",
    "happy holidays",
    "happy mother's day",
    "happy teachers day",
    "get rich",
    "god of wealth",
    "good health",
    "peace and safety",
    "blessing",
    "long life",
    "family happiness",
})

# ---------------------------------------------------------------------------
# 3. Famous character IPs
# ---------------------------------------------------------------------------

FAMOUS_IPS: tuple[str, ...] = (
    "doraemon",
    "pikachu",
    "spongebob",
    "hello kitty",
    "snoopy",
    "garfield",
    "mickey mouse",
    "totoro",
    "shin chan",
    "kermit the frog",
    "line brown",
    "pusheen",
    "rilakkuma",
    "minions",
    "patrick star",
    "tom and jerry",
    "winnie the pooh",
    "donald duck",
    "bugs bunny",
    "homer simpson",
    "pepe the frog",
    "doge",
    "grumpy cat",
    "nyan cat",
    "stitch",
    "olaf",
    "shrek",
    "mario",
    "sonic",
    "kirby",
    "pompompurin",
    "my melody",
    "kuromi",
    "cinnamoroll",
    "gudetama",
    "molang",
    "chiikawa",
    "sailor moon",
    "naruto",
    "luffy",
    "goku",
    "tuzki",
    "pleasant goat",
    "big big wolf",
    "boonie bears",
    "mashimaro",
    "peppa pig",
    "paddington",
    "miffy",
    "astro boy",
    "ultraman",
    "baymax",
    "buzz lightyear",
    "scooby doo",
    "tweety",
    "pink panther",
    "anpanman",
    "keroppi",
    "hamtaro",
    "line cony",
)

FAMOUS_IP_COUNT: int = 60

# ---------------------------------------------------------------------------
# 4. Procedural long-tail IP names
# ---------------------------------------------------------------------------

NAME_SYLLABLES: tuple[str, ...] = (
    "mo", "ki", "bun", "pip", "lu", "zo", "tak", "mi", "po", "ni",
    "ba", "ru", "to", "fu", "chi", "nu", "pa", "bo", "di", "ko",
    "la", "mu", "pe", "so", "ti", "wa", "yo", "ze", "gu", "ha",
    "jo", "ka", "le", "ma", "no", "pu", "qi", "ro", "su", "tu",
    "vi", "wu", "xi", "ya", "zu", "bi", "do", "fi", "go", "hu",
    "ji", "ku", "li", "me", "ne", "pi", "ri", "sa", "te", "pom",
)

NAME_SUFFIXES: tuple[str, ...] = (
    "bun",
    "pup",
    "chan",
    "kun",
    "bear",
    "cat",
    "duck",
    "boy",
    "girl",
    "jr",
    "bean",
    "puff",
    "chick",
    "mochi",
    "bunny",
    "kitty",
    "panda",
    "dumpling",
    "pig",
    "fox",
    "frog",
    "sama",
    "tot",
    "pie",
    "nugget",
)

# ---------------------------------------------------------------------------
# 5. Entity nouns and modifiers
# ---------------------------------------------------------------------------

ENTITY_NOUNS: tuple[tuple[str, ...], ...] = (
    # animals
    ("cat", "kitty", "kitten"),
    ("dog", "puppy", "doggo"),
    ("rabbit", "bunny"),
    ("panda",),
    ("bear", "teddy bear"),
    ("pig", "piggy", "piglet"),
    ("duck", "duckling", "ducky"),
    ("chicken", "chick", "hen"),
    ("frog", "froggy"),
    ("fox",),
    ("penguin",),
    ("hamster",),
    ("tiger",),
    ("lion",),
    ("monkey",),
    ("cow",),
    ("sheep", "lamb"),
    ("horse", "pony"),
    ("mouse", "rat"),
    ("dragon",),
    ("snake",),
    ("fish", "goldfish"),
    ("shark",),
    ("whale",),
    ("octopus",),
    ("bird", "birdie"),
    ("owl",),
    ("parrot",),
    ("koala",),
    ("sloth",),
    ("otter",),
    ("seal",),
    ("corgi",),
    ("shiba", "shiba inu"),
    ("alpaca", "llama"),
    ("squirrel",),
    ("turtle", "tortoise"),
    ("dinosaur", "dino", "t rex"),
    ("unicorn",),
    ("snail",),
    ("bee", "bumblebee"),
    ("butterfly",),
    ("capybara",),
    # food and drink
    ("coffee", "latte", "espresso"),
    ("cake", "cupcake"),
    ("rice", "rice bowl"),
    ("noodles", "ramen"),
    ("dumpling", "dumplings", "jiaozi"),
    ("hotpot", "hot pot"),
    ("mooncake",),
    ("zongzi",),
    ("watermelon",),
    ("peach",),
    ("apple",),
    ("banana",),
    ("strawberry",),
    ("pizza",),
    ("burger", "hamburger"),
    ("fries", "french fries"),
    ("ice cream", "popsicle"),
    ("candy", "lollipop"),
    ("chocolate",),
    ("beer",),
    ("wine",),
    ("tea", "green tea"),
    ("egg", "fried egg"),
    ("bread", "loaf"),
    ("chili", "hot pepper"),
    ("sushi",),
    ("donut", "doughnut"),
    ("cookie", "biscuit"),
    ("tofu",),
    ("baozi", "steamed bun"),
    # objects and symbols
    ("heart", "love heart"),
    ("star",),
    ("moon",),
    ("sun", "sunshine"),
    ("cloud",),
    ("rainbow",),
    ("flower", "rose", "bouquet"),
    ("tree",),
    ("red envelope", "hongbao"),
    ("gold coin", "coins"),
    ("money", "cash"),
    ("gift", "present", "gift box"),
    ("balloon", "balloons"),
    ("firecracker", "firecrackers"),
    ("lantern", "red lantern"),
    ("phone", "smartphone", "cellphone"),
    ("computer", "laptop"),
    ("bed",),
    ("umbrella",),
    ("book", "books"),
    ("clock", "alarm clock"),
    ("crown",),
    ("trophy",),
    ("fire", "flames"),
    ("bomb",),
    ("ghost",),
    ("robot",),
    ("rocket",),
    ("car",),
    # people and characters
    ("old man", "grandpa", "grandfather"),
    ("old lady", "grandma", "grandmother"),
    ("baby", "toddler"),
    ("office worker", "salaryman", "office drone"),
    ("student", "schoolkid"),
    ("teacher",),
    ("little boy", "kid"),
    ("little girl",),
    ("couple", "lovers"),
    ("doctor",),
    ("chef", "cook"),
    ("police officer", "cop"),
    ("ninja",),
    ("clown",),
    ("princess",),
    ("astronaut",),
    ("snowman",),
    ("alien",),
)

ENTITY_COUNT: int = 120
MAX_ENTITY_SYNONYMS: int = 3

ENTITY_MODIFIERS: tuple[str, ...] = (
    "fat",
    "tiny",
    "red",
    "sleepy",
    "fluffy",
    "angry",
    "golden",
    "giant",
    "chubby",
    "little",
    "round",
    "pink",
    "blue",
    "green",
    "purple",
    "black",
    "white",
    "yellow",
    "smiling",
    "crying",
    "grumpy",
    "lazy",
    "hungry",
    "sneaky",
    "dancing",
    "flying",
    "sparkly",
    "fuzzy",
    "drunk",
    "derpy",
    "shy",
    "wobbly",
    "evil",
    "brave",
    "clumsy",
    "dizzy",
    "sweaty",
    "squishy",
    "stinky",
    "rich",
)

# ---------------------------------------------------------------------------
# 6. OCR fillers and query noise
# ---------------------------------------------------------------------------

OCR_FILLERS: tuple[str, ...] = (
    "boss",
    "bro",
    "sis",
    "everyone",
    "today",
    "again",
    "hahaha",
    "lol",
    "omg",
    "dear",
    "my friend",
    "for real",
    "right now",
    "buddy",
    "guys",
    "friends",
    "baby girl",
    "honestly",
    "seriously though",
    "ahhh",
    "hmm",
    "oh",
    "la",
    "ya",
    "tonight",
    "all of you",
    "my dear",
    "just saying",
    "literally",
    "you know",
)

QUERY_NOISE_WORDS: tuple[str, ...] = (
    "sticker",
    "stickers",
    "meme",
    "memes",
    "gif",
    "pic",
    "picture",
    "emoji",
    "emote",
    "funny",
    "lol",
    "image",
    "reaction",
    "expression",
    "send",
)

_ALLOWED_CHARS: frozenset[str] = frozenset(
    "abcdefghijklmnopqrstuvwxyz0123456789 '"
)


def check() -> None:
    """Assert all count, format and uniqueness invariants of this module."""

    def fail(msg: str) -> None:
        raise AssertionError(msg)

    def check_str(s: str, where: str) -> None:
        if not isinstance(s, str) or not s:
            fail(f"{where}: empty or non-string value {s!r}")
        bad = sorted(set(s) - _ALLOWED_CHARS)
        if bad:
            fail(f"{where}: {s!r} has disallowed characters {bad}")
        if s != s.strip() or "  " in s:
            fail(f"{where}: {s!r} has stray spaces")

    def check_flat(name: str, items: tuple[str, ...], lo: int, hi: int) -> None:
        if not (lo <= len(items) <= hi):
            fail(f"{name}: expected {lo}..{hi} items, got {len(items)}")
        seen: set[str] = set()
        for s in items:
            check_str(s, name)
            if s in seen:
                fail(f"{name}: duplicate {s!r}")
            seen.add(s)

    # 1. styles
    check_flat("STYLE_TREATMENTS", STYLE_TREATMENTS, 12, 18)
    check_flat("STYLE_MEDIA", STYLE_MEDIA, 8, 12)
    pairs = len(STYLE_TREATMENTS) * len(STYLE_MEDIA)
    if pairs < MIN_STYLE_PAIRS:
        fail(f"style pairs {pairs} < {MIN_STYLE_PAIRS}")

    # 2. meanings
    if len(MEANINGS) != MEANING_COUNT:
        fail(f"MEANINGS: expected {MEANING_COUNT} entries, got {len(MEANINGS)}")
    meaning_strings: dict[str, str] = {}
    labels: set[str] = set()
    for entry in MEANINGS:
        if not isinstance(entry, tuple) or not entry:
            fail(f"MEANINGS: bad entry {entry!r}")
        label = entry[0]
        n_para = len(entry) - 1
        if not (MIN_PARAPHRASES <= n_para <= MAX_PARAPHRASES):
            fail(f"MEANINGS[{label!r}]: {n_para} paraphrases, expected "
                 f"{MIN_PARAPHRASES}..{MAX_PARAPHRASES}")
        labels.add(label)
        for s in entry:
            check_str(s, f"MEANINGS[{label!r}]")
            if s in meaning_strings:
                fail(f"MEANINGS: {s!r} appears in both "
                     f"{meaning_strings[s]!r} and {label!r}")
            meaning_strings[s] = label
    missing = sorted(BLESSING_MEANINGS - labels)
    if missing:
        fail(f"BLESSING_MEANINGS not canonical MEANINGS labels: {missing}")
    if not (12 <= len(BLESSING_MEANINGS) <= 24):
        fail(f"BLESSING_MEANINGS: unexpected size {len(BLESSING_MEANINGS)}")

    # 3. famous IPs
    check_flat("FAMOUS_IPS", FAMOUS_IPS, FAMOUS_IP_COUNT, FAMOUS_IP_COUNT)
    for ip in FAMOUS_IPS:
        if not (1 <= len(ip.split()) <= 3):
            fail(f"FAMOUS_IPS: {ip!r} should be 1-3 words")
        if ip in meaning_strings:
            fail(f"FAMOUS_IPS: {ip!r} collides with MEANINGS "
                 f"{meaning_strings[ip]!r}")

    # 4. name parts
    check_flat("NAME_SYLLABLES", NAME_SYLLABLES, 50, 70)
    for syl in NAME_SYLLABLES:
        if " " in syl:
            fail(f"NAME_SYLLABLES: {syl!r} must be a single token")
    check_flat("NAME_SUFFIXES", NAME_SUFFIXES, 20, 30)

    # 5. entities
    if len(ENTITY_NOUNS) != ENTITY_COUNT:
        fail(f"ENTITY_NOUNS: expected {ENTITY_COUNT} entries, "
             f"got {len(ENTITY_NOUNS)}")
    ip_set = set(FAMOUS_IPS)
    entity_strings: dict[str, str] = {}
    for entry in ENTITY_NOUNS:
        if not isinstance(entry, tuple) or not entry:
            fail(f"ENTITY_NOUNS: bad entry {entry!r}")
        head = entry[0]
        if len(entry) - 1 > MAX_ENTITY_SYNONYMS:
            fail(f"ENTITY_NOUNS[{head!r}]: more than "
                 f"{MAX_ENTITY_SYNONYMS} synonyms")
        for s in entry:
            check_str(s, f"ENTITY_NOUNS[{head!r}]")
            if s in entity_strings:
                fail(f"ENTITY_NOUNS: {s!r} appears in both "
                     f"{entity_strings[s]!r} and {head!r}")
            if s in meaning_strings:
                fail(f"ENTITY_NOUNS: {s!r} collides with MEANINGS "
                     f"{meaning_strings[s]!r}")
            if s in ip_set:
                fail(f"ENTITY_NOUNS: {s!r} collides with FAMOUS_IPS")
            entity_strings[s] = head
    check_flat("ENTITY_MODIFIERS", ENTITY_MODIFIERS, 35, 45)
    treatments = set(STYLE_TREATMENTS)
    clash = sorted(set(ENTITY_MODIFIERS) & treatments)
    if clash:
        fail(f"ENTITY_MODIFIERS overlap STYLE_TREATMENTS: {clash}")

    # 6. fillers and noise
    check_flat("OCR_FILLERS", OCR_FILLERS, 25, 35)
    check_flat("QUERY_NOISE_WORDS", QUERY_NOISE_WORDS, 12, 20)
    clash = sorted(set(QUERY_NOISE_WORDS) & treatments)
    if clash:
        fail(f"QUERY_NOISE_WORDS overlap STYLE_TREATMENTS: {clash}")
