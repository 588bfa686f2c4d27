"""Operations of the network: slewing, exposing, scheduling the night."""
