locals {
  database_prefix = replace(var.name_prefix, "-", "_")
}

resource "aws_glue_catalog_database" "this" {
  for_each = var.databases

  name         = "${local.database_prefix}_${each.key}"
  description  = each.value.description
  location_uri = each.value.location == "" ? "${var.lake_root}/" : "${var.lake_root}/${each.value.location}/"
  tags         = var.tags
}
