"""Reports a person reads: tonight at each site, a year of weather."""
