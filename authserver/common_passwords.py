"""Well-known passwords of 12 characters or more, lower-case: the ones the length rule alone does
not stop. A short hand-picked list (the top of the public leaked-password lists that pass the
length rule, keyboard walks, repeats and famous examples), not an exhaustive one: it stops the
guesses an attacker tries first, at no cost and without sending anything anywhere."""

COMMON_PASSWORDS = frozenset({
    # digits, repeats and sequences
    "000000000000", "111111111111", "123123123123", "121212121212", "123456789012",
    "1234567890123", "12345678901234", "123456789000", "112233445566", "987654321098",
    "098765432109", "123456654321", "123451234512", "147258369147", "aaaaaaaaaaaa",
    "abcabcabcabc", "abcdefghijkl", "abcdefgh1234", "abcd12345678", "abc123456789",
    "1234abcd1234", "123456abcdef",
    # keyboard walks
    "qwertyuiopas", "qwertyuiop12", "qwertyuiop123", "qwerty123456", "123456qwerty",
    "qwertyqwerty", "qwertyuiopasdfgh", "qwertyuiopasdfghjkl", "asdfghjkl123",
    "zxcvbnm12345", "qazwsxedcrfv", "1qaz2wsx3edc", "1qaz2wsx3edc4rfv",
    "!qaz2wsx#edc", "1qaz@wsx3edc", "zaq12wsxcde3", "1q2w3e4r5t6y", "1q2w3e4r5t6y7u",
    "q1w2e3r4t5y6",
    # "password" and friends
    "password1234", "password12345", "password123456", "password2024", "password2025",
    "password2026", "password!234", "passwordpassword", "password1password", "1234password",
    "passw0rd1234", "p@ssw0rd1234", "p@ssword1234", "mypassword123", "mypassword1234",
    "newpassword123", "thisismypassword", "thisisapassword", "secretpassword",
    "mysecretpassword", "supersecret123", "securepassword", "verysecurepassword",
    "changeme1234", "letmein12345", "letmein123456", "trustno1trustno1",
    "administrator", "administrator1", "admin1234567", "adminadmin123", "rootpassword",
    "welcome12345", "welcome123456", "welcome2024!", "welcome2025!",
    # words with digits
    "iloveyou1234", "iloveyou123456", "iloveyouforever", "iloveyoubaby", "superman1234",
    "batman123456", "football1234", "baseball1234", "basketball12", "princess1234",
    "sunshine1234", "starwars1234", "pokemon12345", "monkey123456", "dragon123456",
    "shadow123456", "master123456", "michael12345", "jennifer1234", "summer123456",
    "winter123456", "january12345", "december1234", "liverpool123", "chelsea12345",
    "arsenal12345", "barcelona123",
    # famous examples
    "correcthorsebatterystaple", "correct horse battery staple", "tr0ub4dor&3tr0ub4dor&3",
})
