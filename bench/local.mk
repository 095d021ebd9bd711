# bench module: sources listed here (see Makefile.am).
