"""What a user reads when the Ryu engine is missing (imports no OpenFlow framework).

os-ken 4.2 is always installed and runs on Python 3.10-3.13. Ryu 4.34 is an optional extra:
it installs on Python 3.10 and 3.11 only (it imports ``distutils``, gone in 3.12) and needs the
import hook of :mod:`controllers.ryu_compat`; ``make setup`` installs both on Python 3.11.
``auto`` still prefers Ryu where it is installed, so runs on Debian 12 stay comparable with
earlier results (docs/platforms.md).
"""

from __future__ import annotations

RYU_INSTALL_HINT = ("Ryu is an optional extra for Python 3.10/3.11: pip install -e '.[ryu]' "
                    "&& python -m controllers.ryu_compat --install (sudo make setup does both "
                    "on Python 3.11), or use --engine os-ken")
