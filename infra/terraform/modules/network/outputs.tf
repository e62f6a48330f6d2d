output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets EMR Serverless uses."
  value       = [for subnet in aws_subnet.private : subnet.id]
}

output "emr_security_group_id" {
  description = "Security group of the EMR Serverless workers."
  value       = aws_security_group.emr.id
}

output "interface_endpoints_security_group_id" {
  description = "Security group of the interface VPC endpoints (callers add ingress for their own workers)."
  value       = aws_security_group.endpoints.id
}

output "gateway_endpoint_prefix_list_ids" {
  description = "Prefix list IDs of the gateway endpoints by service (`s3`, `dynamodb`), for security group egress rules."
  value       = { for service, endpoint in aws_vpc_endpoint.gateway : service => endpoint.prefix_list_id }
}

output "vpc_endpoint_ids" {
  description = "IDs of the gateway and interface VPC endpoints, by service."
  value       = merge({ for k, v in aws_vpc_endpoint.gateway : k => v.id }, { for k, v in aws_vpc_endpoint.interface : k => v.id })
}

output "nat_gateway_id" {
  description = "ID of the NAT gateway, or null when it is disabled."
  value       = var.enable_nat_gateway ? aws_nat_gateway.this[0].id : null
}
