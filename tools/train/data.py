"""The King James Bible from Debian's bible-kjv, split by chapter into training and validation text.

`bible -f Gen1:1-Rev22:21` prints one verse a line, "Ge1:1 In the beginning God created ...".
We drop the reference and keep the verse. A chapter becomes one document: its verses joined by
"\n". Every 20th chapter (counting all 1189 from Genesis 1, those with index % 20 == 7) is
held out for validation: about 5% of the text, spread over the whole book.
"""
import re
import subprocess

REFERENCE = re.compile(r'^(\S+?)(\d+):(\d+) (.*)$')
VALIDATION_EVERY = 20
VALIDATION_OFFSET = 7


def load_chapters():
    """[(name like 'Ge1', text)] in canonical order; text is the chapter's verses joined by '\\n'."""
    out = subprocess.run(['bible', '-f', 'Gen1:1-Rev22:21'], check=True, capture_output=True, text=True).stdout
    chapters = []
    current = None
    for line in out.splitlines():
        if not line.strip():
            continue
        m = REFERENCE.match(line)
        if not m:
            raise ValueError(f'unexpected line from bible: {line[:80]!r}')
        book, chapter, _verse, text = m.groups()
        name = f'{book}{chapter}'
        if current is None or current[0] != name:
            current = (name, [])
            chapters.append(current)
        current[1].append(text.strip())
    return [(name, '\n'.join(verses)) for name, verses in chapters]


def split_chapters(chapters):
    """(train, validation) lists of chapter texts."""
    train, val = [], []
    for i, (_name, text) in enumerate(chapters):
        (val if i % VALIDATION_EVERY == VALIDATION_OFFSET else train).append(text)
    return train, val
