"""egan_lib: the library of the energy-GAN book ("GAN = digging pits + jumping into pits").

Import the modules you need, for example ``from egan_lib import losses, train``; each module
names the chapter that explains it. Importing the package imports no submodule, so each can be
used on its own.
"""

__version__ = "0.1.0"
