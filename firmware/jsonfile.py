# A small JSON file written so that a power cut leaves the old contents or the new, never half:
# the config cache (settings.py) and the record of announced discovery topics (announce.py).

import json
import os


def write(path, obj):
    """Write then rename; False if the flash is full or read-only (the caller copes)."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f)
        try:
            os.rename(tmp, path)  # LittleFS and POSIX replace the old file in one step
        except OSError:
            os.remove(path)  # FAT does not rename over a file
            os.rename(tmp, path)
    except OSError:
        return False
    return True
