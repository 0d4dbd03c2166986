enum DepotStoreModule {}
